"""Support requests (the form and the request pages)."""

from flask import Blueprint

bp = Blueprint("support", __name__)
