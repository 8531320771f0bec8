"""The console's forms, declared once: what each change asks for. The values are checked by
the same functions as the `gate` command's (gate.accounts), whose refusals carry the Russian
message the page shows."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField


class OrgAddForm(FlaskForm):
    name = StringField("Название организации")
    tariff = SelectField("Тариф")
    until = StringField("Договор действует по (ГГГГ-ММ-ДД, пусто — бессрочно)")
    external_id = StringField("Внешний идентификатор (в портале клиентов, необязательно)")


class OrgSetForm(FlaskForm):
    tariff = SelectField("Тариф")
    until = StringField("Договор действует по (ГГГГ-ММ-ДД, пусто — бессрочно)")
    external_id = StringField("Внешний идентификатор (пусто — нет)")


class InviteForm(FlaskForm):
    email = StringField("E-mail")
    org = StringField("Организация (точное название)")
    staff = BooleanField("Сотрудник поддержки (видит все разделы)")
    admin = BooleanField("Администратор организации (управляет её людьми)")
    next = HiddenField()


def tariff_choices(tariffs: dict) -> list[tuple[str, str]]:
    return [(key, f"{t.title} ({key})") for key, t in tariffs.items()]
