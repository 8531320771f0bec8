"""The support request form, declared once: its fields, their checks and Russian messages.

The view renders the same object it validates (templates/support_form.html), so what was typed
comes back with the message next to its field.
"""

from __future__ import annotations

import re

from flask import g
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, MultipleFileField, SelectField, StringField, \
    TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import ValidationError

from gate import requests_store as store
from gate.access import may_see
from gate.sections import section_of_url
from gate.security import safe_next
from gate.site import normalize_path

MAX_FILES = 5
# A mail with 7 MB of attachments stays under common SMTP limits (Postfix: 10 MB) after base64.
MAX_FILE = 5 * 1024 * 1024
MAX_TOTAL = 7 * 1024 * 1024
CONTENT_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
PHONE_RE = re.compile(r"^\+?[0-9 ()\-]{5,30}$")
MAX_REGISTERS = 100_000


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def from_value(raw: str | None) -> str:
    """The article the reader came from: a local path only, anything else is dropped.

    An address in a section the visitor may not see is kept only as that section's root.
    """
    value = safe_next(raw, default="")
    if len(value) > 500:
        return ""
    section = section_of_url(normalize_path(value.split("?")[0].split("#")[0]) or value)
    identity = g.get("identity")  # None when storage failed before the visitor was known
    if section and not may_see(identity.sections if identity else frozenset(), section):
        return f"/{section}/"
    return value


def _text(label: str, limit: int):
    def check(_form, field):
        if not field.data:
            raise ValidationError(f"Укажите {label}.")
        if len(field.data) > limit:
            raise ValidationError(f"Не более {limit} символов.")
    return check


def _phone(_form, field):
    if not PHONE_RE.match(field.data or ""):
        raise ValidationError("Укажите телефон для связи: цифры, пробелы, скобки, «+» и «-», "
                              "от 5 до 30 знаков.")


def _description(_form, field):
    if len(field.data or "") < 10:
        raise ValidationError("Опишите проблему: что произошло, когда, что уже проверили "
                              "(не меньше 10 символов).")
    if len(field.data) > 20000:
        raise ValidationError("Описание длиннее 20000 символов: приложите подробности файлом.")


def _registers(_form, field):
    try:
        number = int(field.data or "0")
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_REGISTERS:
        raise ValidationError("Укажите число касс: целое число от 0.")
    field.number = number


def _no_nul(_form, field):
    if isinstance(field.data, str) and "\x00" in field.data:
        raise ValidationError("Недопустимые символы.")


def _content_type(value: str | None) -> str:
    """The client's type of an uploaded file when it is a plain type/subtype that fits the
    database column (100 characters), else application/octet-stream."""
    if value and len(value) <= 100 and CONTENT_TYPE_RE.match(value):
        return value
    return "application/octet-stream"


class SupportForm(FlaskForm):
    origin = HiddenField(name="from", filters=[from_value])
    phone = StringField("Телефон для связи", filters=[_strip], validators=[_no_nul, _phone])
    category = SelectField("Тема", choices=[SelectChoice("", "— выберите —")] + [
        SelectChoice(key, title, {"data-in-sla": "yes" if in_sla else "no"})
        for key, (title, in_sla) in store.CATEGORIES.items()],
        validate_choice=False, validators=[_no_nul])
    criticality = SelectField("Критичность", choices=[SelectChoice(*c) for c in store.CRITICALITIES.items()],
                              default="ordinary", validate_choice=False, validators=[_no_nul])
    store = StringField("Магазин (название или номер)", filters=[_strip],
                        validators=[_no_nul, _text("магазин (название или номер)", 200)])
    registers = StringField("Сколько касс затронуто", filters=[_strip], default="0",
                            validators=[_no_nul, _registers])
    subject = StringField("Кратко: что случилось", filters=[_strip],
                          validators=[_no_nul, _text("краткую тему", 200)])
    description = TextAreaField("Описание", filters=[_strip], validators=[_no_nul, _description])
    attachments = MultipleFileField("Вложения")
    consent = BooleanField(false_values=(False, "false", "", "no"))

    def validate_category(self, field):
        if field.data not in store.CATEGORIES:
            raise ValidationError("Выберите тему обращения из списка.")

    def validate_criticality(self, field):
        if field.data not in store.CRITICALITIES:
            raise ValidationError("Выберите критичность из списка.")

    def validate_consent(self, field):
        if self.consent.raw_data != ["yes"]:
            raise ValidationError("Без согласия на обработку персональных данных мы не можем "
                                  "принять обращение.")

    def validate_attachments(self, field):
        self.files, total = [], 0
        for upload in field.data or ():
            if not upload or not upload.filename:
                continue
            data = upload.read(MAX_FILE + 1)
            name = re.sub(r"[^\w.\- ()]", "_", upload.filename)[-100:] or "file"
            if len(data) > MAX_FILE:
                raise ValidationError(f"Файл «{name}» больше 5 МБ.")
            self.files.append((name, _content_type(upload.mimetype), data))
            total += len(data)
        if len(self.files) > MAX_FILES:
            raise ValidationError(f"Не больше {MAX_FILES} файлов.")
        if total > MAX_TOTAL:
            raise ValidationError("Вложения вместе больше 7 МБ.")

    @staticmethod
    def aria(field) -> dict:
        """Attributes that tie a field to its error message for screen readers."""
        if not field.errors:
            return {}
        return {"aria-invalid": "true", "aria-describedby": f"{field.id}-error"}

    def fields_to_store(self) -> dict:
        """What gate.requests_store.create takes."""
        return {"from": self.origin.data or "", "phone": self.phone.data,
                "category": self.category.data, "criticality": self.criticality.data,
                "store": self.store.data, "registers": self.registers.number,
                "subject": self.subject.data, "description": self.description.data}
