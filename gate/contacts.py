"""The other ways to reach support, as the tariff description gives them ("Как вы можете с нами
связаться?"): requests on the website and by phone, consultations by phone or e-mail.

The one place the gate's own pages and mails take them from; tests/test_storage_errors.py
checks that the public contacts page (docs/contacts.md) says the same.
"""

from __future__ import annotations

PHONE = "8 (800) 333-22-51"
EMAIL = "sd@crystals.ru"
WEBSITE = "www.crystals.ru/support"

PHONE_LINK = "tel:+78003332251"
EMAIL_LINK = f"mailto:{EMAIL}"
WEBSITE_LINK = f"http://{WEBSITE}"

# one line for mails and plain-text answers
IN_ONE_LINE = f"телефон {PHONE}, e-mail {EMAIL}"
