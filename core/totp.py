"""The optional second factor: time-based one-time codes (TOTP, RFC 6238) with pyotp.

An account turns it on from its page (:mod:`palabre.accounts`) by scanning a
QR code with an authenticator app and typing one code; signing in then asks
for a code after the password. A code is accepted once, within 30 seconds
either side of now.
"""

from __future__ import annotations

import secrets
import time

import pyotp

#: Time steps before and after the current one whose codes are accepted.
VALID_WINDOW = 1


def new_secret() -> str:
    """A fresh base32 secret for an authenticator app."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str = "Palabre") -> str:
    """The ``otpauth://`` address an authenticator app reads from a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


#: Arabic-Indic (Arabic) and Eastern Arabic-Indic (Persian, Urdu) digits, as ASCII ones.
_ARABIC_INDIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)


def matching_step(secret: str, code, last_step: int = 0, now: float | None = None) -> int | None:
    """The time step whose code is ``code``, if it is recent and later than ``last_step``.

    ``None`` for a wrong, old or already used code. Spaces in the code are
    ignored (apps show it as two groups of three digits), and Arabic-Indic
    digits read as the ones they stand for (a phone's Arabic or Persian
    keyboard types them).
    """
    if not isinstance(code, str):
        return None
    code = "".join(code.split()).translate(_ARABIC_INDIC_DIGITS)
    if not code.isascii() or not code.isdigit():
        return None
    otp = pyotp.TOTP(secret)
    current = otp.timecode(time.time() if now is None else now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if step > last_step and secrets.compare_digest(otp.generate_otp(step), code):
            return step
    return None


def accepted_step(facilitator, code) -> int | None:
    """:func:`matching_step` for an account's secret and its last used step."""
    if not facilitator.totp_secret:
        return None
    return matching_step(facilitator.totp_secret, code, facilitator.totp_last_step)
