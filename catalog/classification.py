"""PII classification: which governance tags a column probably deserves, judged from its name
and a sample of its values.

Plain Python with no Django imports, so it can be tested alone; the catalog app stores rules
as data (`ClassifierRule`) and calls `classify()` for every column during a scan. Sampled
values are only looked at here: a `Suggestion` carries the rule, tag, method, hit ratio and
sample size, never a value.

Tags
----
A tag is written ``<Category>.<Name>`` and split on the *first* dot, so the name may itself be
dotted: ``PII.Special.Health`` is the tag ``Special.Health`` in the category ``PII``.

=========================  ===============================================================
``PII.<Name>``             personal data that identifies or contacts a person: ``Email``,
                           ``Phone``, ``Name``, ``Address``, ``DateOfBirth``, ``NationalID``,
                           ``IPAddress``, ``Geolocation``
``PII.Location``           a quasi-identifier (city, place of birth): identifying only when
                           combined with other columns
``PII.Financial.<Name>``   payment and bank data: ``PaymentCard`` and ``CardSecurityCode``
                           (PCI DSS scope), ``BankAccount``
``PII.Special.<Name>``     GDPR Art. 9 special categories (``Health``, ``Genetic``,
                           ``Biometric``, ``EthnicOrigin``, ``PoliticalOpinion``, ``Religion``,
                           ``TradeUnion``, ``SexualOrientation``) and Art. 10 criminal-offence
                           data (``CriminalRecord``), which needs the same care
``Security.<Name>``        credentials and secrets (``Credential``): not personal data, but
                           restricted
=========================  ===============================================================

Sensitivity is ``restricted`` (payment cards, national ids, special categories, secrets),
``confidential`` (contact details, names, addresses, birth dates, IP addresses, bank
accounts) or ``internal`` (quasi-identifiers).

How a rule decides
------------------
Column names are normalised (``customerEmail`` -> ``customer_email``) and matched with
``re.search``, case-insensitively; ``(?:^|_)`` and ``(?:_|$)`` mark word boundaries. Values
are stripped and must match ``value_pattern`` in full (case-sensitively; use ``(?i)``), then
pass the validator. Whole numbers in numeric columns lose a zero fraction
(``4111111111111111.0`` -> ``4111111111111111``), so card numbers or phone numbers stored as
numbers still count.

* By values: at least ``min_samples`` non-empty values, of which at least ``min_hit_ratio``
  match. Method ``name+values`` when the name matched too, else ``values``.
* By name: the name matched (and ``exclude_name_pattern`` did not), and the rule has no
  value pattern, is ``name_only``, or there are too few values to judge. When values are
  available and say otherwise (a ``phone`` column holding ``yes``/``no``), the name alone
  does not fire.

Three kinds of evidence are too weak to identify a column without its name:

* plain digit runs (``20250117``, ``4930123456``) could be ids, counters, amounts or
  timestamps, so they count towards a values-only decision only for checksum validators
  (``luhn``, ``payment_card``, ``iban``); with a matching name they count for every rule;
* values passing ``date_of_birth`` or ``geo_coordinate`` (any past date, any number within
  +-180) only confirm a matching name and never fire by themselves;
* boolean, date, time, timestamp and interval columns hold flags and points in time, never an
  identifier: only special-category rules (tag ``PII.Special.*``, e.g. ``has_disability`` or
  ``diagnosis_date``) and, for temporal columns, date-reading rules (``date_of_birth``) apply
  to them. Booleans never match value rules.

Every rule that fires is returned, strongest evidence first: ``name+values``, then
``values``, then ``name``; then the more sensitive rule, the higher hit ratio, and the order
the rules were given in.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache

__all__ = [
    "BUILTIN_RULES",
    "CHECKSUM_VALIDATORS",
    "CONFIRMING_VALIDATORS",
    "METHODS",
    "SENSITIVITIES",
    "SPECIAL_CATEGORY_PREFIX",
    "VALIDATORS",
    "Rule",
    "Suggestion",
    "classify",
    "normalise_column_name",
]

SENSITIVITIES = ("restricted", "confidential", "internal")  # most sensitive first
METHODS = ("name+values", "values", "name")  # strongest evidence first
SPECIAL_CATEGORY_PREFIX = "PII.Special."

BOOLEAN_TYPES = frozenset({"boolean"})
TEMPORAL_TYPES = frozenset({"date", "time", "timestamp", "interval"})
NUMERIC_TYPES = frozenset({"integer", "decimal", "float"})
# Longer values are never identifiers, and capping them bounds the regex work per value.
MAX_VALUE_LENGTH = 4096


# --- validators ------------------------------------------------------------------------------


def _compact(value: str) -> str:
    return re.sub(r"[\s-]", "", value)


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def luhn(value: str) -> bool:
    """The Luhn (mod 10) check digit; spaces and dashes are ignored."""
    digits = _compact(value)
    if len(digits) < 2 or not _ascii_digits(digits):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _known_iin(digits: str) -> bool:
    if digits[0] in "46":  # Visa; Discover, UnionPay, Maestro, RuPay
        return True
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    return (
        51 <= two <= 55  # Mastercard
        or 2221 <= four <= 2720  # Mastercard 2-series
        or 2200 <= four <= 2204  # Mir
        or two in (34, 37)  # American Express
        or 300 <= three <= 305  # Diners Club
        or two in (36, 38, 39)  # Diners Club
        or 3528 <= four <= 3589  # JCB
        or two in (50, 56, 57, 58)  # Maestro
        or two in (81, 82)  # UnionPay, RuPay
        or four == 9792  # Troy
    )


def payment_card(value: str) -> bool:
    """13-19 digits (spaces or dashes allowed) with a valid Luhn digit and a known issuer prefix.
    Lengths are not checked per brand: brands issue several lengths and add new ones."""
    digits = _compact(value)
    return 13 <= len(digits) <= 19 and luhn(digits) and _known_iin(digits)


# ISO 13616 registry lengths; countries missing here are checked by mod-97 alone.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


def iban(value: str) -> bool:
    """An IBAN: country code, the registry length where known, and the mod-97 checksum."""
    compact = re.sub(r"\s", "", value).upper()
    if not compact.isascii() or not _IBAN.fullmatch(compact):
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_SSN = re.compile(r"([0-9]{3})([- ]?)([0-9]{2})\2([0-9]{4})")


def us_ssn(value: str) -> bool:
    """A US Social Security number as the SSA issues them: area not 000, 666 or 900-999,
    group not 00, serial not 0000."""
    match = _SSN.fullmatch(value.strip())
    if not match:
        return False
    area, _, group, serial = match.groups()
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]")
_NINO_UNUSED_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def uk_nino(value: str) -> bool:
    """A UK National Insurance number: two allowed letters (no D, F, I, Q, U, V; no O second;
    not BG, GB, KN, NK, NT, TN, ZZ), six digits and a suffix A-D."""
    compact = re.sub(r"\s", "", value).upper()
    return bool(_NINO.fullmatch(compact)) and compact[:2] not in _NINO_UNUSED_PREFIXES


def ipv4_or_ipv6(value: str) -> bool:
    """An IPv4 or IPv6 address (IPv6 may carry a zone, e.g. fe80::1%eth0)."""
    text = value.strip()
    if not text or len(text) > 64:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_MIDNIGHT = r"(?:[T ]00:00(?::00(?:\.0+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_DATE_SHAPES = (
    re.compile(
        rf"(?P<y>[0-9]{{4}})(?P<s>[-/.])(?P<m>[0-9]{{1,2}})(?P=s)(?P<d>[0-9]{{1,2}}){_MIDNIGHT}"
    ),
    re.compile(r"(?P<d>[0-9]{1,2})\.(?P<m>[0-9]{1,2})\.(?P<y>[0-9]{4})"),
    re.compile(r"(?P<a>[0-9]{1,2})(?P<s>[-/])(?P<b>[0-9]{1,2})(?P=s)(?P<y>[0-9]{4})"),
    re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"),
)


def _calendar_dates(text: str) -> list[date]:
    for shape in _DATE_SHAPES:
        match = shape.fullmatch(text)
        if not match:
            continue
        parts = match.groupdict()
        year = int(parts["y"])
        if "a" in parts:  # 31/12/1980 or 12/31/1980: either reading may be the real one
            a, b = int(parts["a"]), int(parts["b"])
            readings = [(b, a), (a, b)]
        else:
            readings = [(int(parts["m"]), int(parts["d"]))]
        found = []
        for month, day in readings:
            try:
                found.append(date(year, month, day))
            except ValueError:
                continue
        return found
    return []


def date_of_birth(value: str) -> bool:
    """A calendar date a living or historical person may have been born on: 1900 to today.
    ISO (optionally at midnight), 31.12.1980, 31/12/1980, 12/31/1980 and 19801231."""
    today = date.today()
    return any(day.year >= 1900 and day <= today for day in _calendar_dates(value.strip()))


_EMAIL_PATTERN = (
    r"[^\s@\"(),:;<>\[\]\\]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+"
    r"(?:[^\W\d_]{2,63}|xn--[\w-]{1,59})"
)
_EMAIL = re.compile(_EMAIL_PATTERN)


def email(value: str) -> bool:
    """An address a mail server would accept: at most 254 characters, a 64-character local
    part without leading, trailing or doubled dots, and a domain with a top-level label."""
    text = value.strip()
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        return False
    local = text.rsplit("@", 1)[0]
    return not (local.startswith(".") or local.endswith(".") or ".." in local)


_PHONE_CHARS = re.compile(r"\+?[0-9 ().\-/]+")
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*[0-9]{1,6}$", re.IGNORECASE)
_NANP = re.compile(
    r"(?:1[-. ]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[-. ]?)[2-9][0-9]{2}[-. ]?[0-9]{4}"
)
_NANP_LOCAL = re.compile(r"[2-9][0-9]{2}[-. ][0-9]{4}")
_DATE_LIKE = re.compile(r"[0-9]{1,4}[-./][0-9]{1,2}[-./][0-9]{2,4}")


def phone(value: str) -> bool:
    """A telephone number: international (+ or 00, then 7-15 digits), national with a trunk 0,
    North American (212-555-0123, (212) 555-0123, 555-0123) or a plain run of 7-15 digits.
    Dates and 3-2-4 groupings (US SSN) are not phone numbers."""
    text = _PHONE_EXTENSION.sub("", value.strip())
    if not _PHONE_CHARS.fullmatch(text) or _DATE_LIKE.fullmatch(text) or _SSN.fullmatch(text):
        return False
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+"):
        return 7 <= len(digits) <= 15 and digits[0] != "0"
    if text.startswith("00"):
        return 7 <= len(digits) - 2 <= 15 and digits[2] != "0"
    if text.startswith(("0", "(0")):
        return 7 <= len(digits) <= 15
    if _NANP.fullmatch(text) or _NANP_LOCAL.fullmatch(text):
        return True
    return text.isdigit() and 7 <= len(text) <= 15


_COORDINATE = r"[+-]?[0-9]{1,3}(?:\.[0-9]+)?"
_GEO = re.compile(rf"({_COORDINATE})(?:\s*[,; ]\s*({_COORDINATE}))?")


def geo_coordinate(value: str) -> bool:
    """A latitude or longitude (-180..180), or a "lat, lon" pair."""
    match = _GEO.fullmatch(value.strip())
    if not match:
        return False
    first, second = float(match[1]), match[2]
    if second is None:
        return -180 <= first <= 180
    return -90 <= first <= 90 and -180 <= float(second) <= 180


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "luhn": luhn,
    "payment_card": payment_card,
    "iban": iban,
    "us_ssn": us_ssn,
    "uk_nino": uk_nino,
    "ipv4_or_ipv6": ipv4_or_ipv6,
    "date_of_birth": date_of_birth,
    "email": email,
    "phone": phone,
    "geo_coordinate": geo_coordinate,
}
# A checksum makes even a plain digit run specific enough to decide by values alone.
CHECKSUM_VALIDATORS = frozenset({"luhn", "payment_card", "iban"})
# Values passing these are common (any past date, any small number): they confirm a name.
CONFIRMING_VALIDATORS = frozenset({"date_of_birth", "geo_coordinate"})
# Validators that read dates, so their rules apply to date and timestamp columns.
DATE_VALIDATORS = frozenset({"date_of_birth"})


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One classifier rule; see the module docstring for how its fields are used."""

    key: str
    label: str
    tag: str
    sensitivity: str
    name_pattern: str = ""
    value_pattern: str = ""
    validator: str = ""
    min_hit_ratio: float = 0.8
    name_only: bool = False
    exclude_name_pattern: str = ""

    def __post_init__(self):
        for attr in ("name_pattern", "exclude_name_pattern", "value_pattern"):
            try:
                re.compile(getattr(self, attr))
            except re.error as exc:
                raise ValueError(f"rule {self.key!r}: {attr} is not a valid regex: {exc}") from exc
        if self.validator and self.validator not in VALIDATORS:
            raise ValueError(f"rule {self.key!r}: unknown validator {self.validator!r}")
        if not 0 < self.min_hit_ratio <= 1:
            raise ValueError(f"rule {self.key!r}: min_hit_ratio must be in (0, 1]")
        if not (self.name_pattern or self.value_pattern):
            raise ValueError(f"rule {self.key!r}: needs a name pattern or a value pattern")

    @property
    def special_category(self) -> bool:
        return self.tag.startswith(SPECIAL_CATEGORY_PREFIX)


@dataclass(frozen=True)
class Suggestion:
    rule: str
    tag: str
    method: str
    hit_ratio: float | None
    sample_size: int


def _words(body: str) -> str:
    """A name pattern: one of the alternatives in body as whole words of a snake_case name."""
    return rf"(?:^|_)(?:{body})(?:_|$)"


# Names that describe a flag, count, state or timestamp about the data rather than the data.
_ABOUT = (
    r"^(?:is|has|was)_|(?:^|_)(?:ids?|types?|kind|count|status|state|verified|verification|"
    r"validated|confirmed|opt(?:ed)?_?(?:in|out)|consent|subscribed|enabled|flag|format|prefs?|"
    r"preferences?|visibility|at|on|changed|updated|created)(?:_|$)"
)
_ABOUT_DOCUMENT = (
    r"^(?:is|has|was)_|(?:^|_)(?:type|kind|country|issuer|issuing|issued|expiry|expires|"
    r"expiration|valid|validity|verified|verification|status|photo|scan|image|format|required|"
    r"at|on|date|exempt|masked|mask|last_?4|last_?four|hash_?algorithm)(?:_|$)"
)

# The catalog stores each pattern in a 500-character column, so every pattern stays below that.
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule(
        key="payment_card",
        label="Payment card number",
        tag="PII.Financial.PaymentCard",
        sensitivity="restricted",
        name_pattern=_words(
            r"(?:credit|debit|payment|bank)?_?card_?(?:number|num|no|nr|nummer)[0-9]*|credit_?card"
            r"|debit_?card|cc_?(?:number|num|no|nr)|ccn|pan|primary_account_number"
            r"|kredit_?karten?_?nummer|karten_?nummer"
        ),
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:mask(?:ed)?|last_?(?:4|four)|first_?6|bin|truncated|tokeni[sz]ed|token|"
        r"brand|network|scheme|exp(?:iry|iration|ires)?|holder|issuer|country|fingerprint|"
        r"ref(?:erence)?)(?:_|$)",
        value_pattern=r"[0-9](?:[ -]?[0-9]){12,18}",
        validator="payment_card",
    ),
    Rule(
        key="card_security_code",
        label="Card security code",
        tag="PII.Financial.CardSecurityCode",
        sensitivity="restricted",
        name_pattern=_words(
            r"cvv2?|cvc2?|csc|cav2|cvn|card_?verification(?:_?(?:code|value|number))?"
            r"|card_?security_?code|kartenpruefnummer"
        ),
        exclude_name_pattern=r"^(?:is|has|was)_|(?:^|_)(?:id|type|status|check|checked|result|"
        r"response|match|matched|provided|present|supplied|required|enabled|at|on)(?:_|$)",
        name_only=True,
    ),
    Rule(
        key="iban",
        label="Bank account (IBAN)",
        tag="PII.Financial.BankAccount",
        sensitivity="confidential",
        name_pattern=_words(
            r"iban|bank_?account(?:_?(?:number|num|no|nr))?|konto_?nummer|kontonummer"
            r"|bankverbindung"
        ),
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:bic|swift|bank_?name|country|currency|holder|owner|masked|last_?4)(?:_|$)",
        value_pattern=r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}",
        validator="iban",
    ),
    Rule(
        key="us_ssn",
        label="US Social Security number",
        tag="PII.NationalID",
        sensitivity="restricted",
        name_pattern=_words(
            r"ssn|social_?security(?:_?(?:number|num|no|nr))?|soc_?sec(?:_?(?:number|num|no|nr))?"
        ),
        exclude_name_pattern=_ABOUT_DOCUMENT,
        value_pattern=r"[0-9]{3}([- ]?)[0-9]{2}\1[0-9]{4}",
        validator="us_ssn",
    ),
    Rule(
        key="uk_nino",
        label="UK National Insurance number",
        tag="PII.NationalID",
        sensitivity="restricted",
        name_pattern=_words(r"nino|ni_?(?:number|no)|national_?insurance(?:_?(?:number|no|nr))?"),
        exclude_name_pattern=_ABOUT_DOCUMENT,
        value_pattern=r"[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d]",
        validator="uk_nino",
    ),
    Rule(
        key="national_id",
        label="National identity, passport or tax number",
        tag="PII.NationalID",
        sensitivity="restricted",
        name_pattern=_words(
            r"(?:national_?(?:id|identity|identification)|passport|tax_?id|tax_?identification"
            r"|taxpayer_?id|personnummer|henkilotunnus|steuer_?id|steuer_?identifikations"
            r"|steuernummer|(?:id|identity)_?card|personal_?ausweis|ausweis"
            r"|driv(?:er|ers|ing)_?licen[cs]e|fuehrerschein|social_?insurance"
            r"|sozialversicherungs|aadhaa?r|pesel|bsn|cpf|curp|nif|dni|codice_?fiscale"
            r"|fiscal_?code)(?:_?(?:number|num|no|nr|nummer|id))?"
            r"|(?:personal|identity|sv|tax|taxpayer)_?(?:id_?)?(?:number|num|no|nr|nummer)"
        ),
        exclude_name_pattern=_ABOUT_DOCUMENT,
        name_only=True,
    ),
    Rule(
        key="email",
        label="Email address",
        tag="PII.Email",
        sensitivity="confidential",
        name_pattern=_words(r"e_?mails?(?:_?(?:addr|address|adresse))?[0-9]*")
        + r"|(?:^|_)mail(?:_?(?:addr|address|adresse))?$",
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:subject|body|content|html|text|template|campaigns?|messages?|"
        r"notifications?|newsletter|frequency|sent|bounced?|opened|delivery|server|host|provider|"
        r"domain|logs?|events?)(?:_|$)",
        value_pattern=_EMAIL_PATTERN,
        validator="email",
    ),
    Rule(
        key="phone",
        label="Phone number",
        tag="PII.Phone",
        sensitivity="confidential",
        name_pattern=_words(r"(?:tele)?phone(?:_?(?:number|num|no|nr))?[0-9]*")
        + r"|(?:^|_)(?:tel|telefon|telefonnummer|handy|handynummer|msisdn|fax|mobile|mobil"
        r"|mobilnummer|cell_?(?:phone|number|no|nr))(?:_?(?:number|num|no|nr))?(?:_?[0-9]+)?$",
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:model|brand|make|os|manufacturer|carrier|platform|device|app|country_code|"
        r"prefix|extension|ext|area_code)(?:_|$)",
        value_pattern=(
            r"[+(]?[0-9][0-9 ().\-/]{5,40}(?:\s*(?:[xX#]|[eE][xX][tT]\.?|extension)\s*[0-9]{1,6})?"
        ),
        validator="phone",
    ),
    Rule(
        key="ip_address",
        label="IP address",
        tag="PII.IPAddress",
        sensitivity="confidential",
        name_pattern=_words(
            r"ip|ipv[46]|ip_?addr(?:ess)?|ipv[46]_?addr(?:ess)?|ipaddress|remote_?addr(?:ess)?"
            r"|x_forwarded_for|forwarded_for|inet"
        ),
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:ranges?|version|(?:allow|white|block|black)_?list|cidr|subnet|country|"
        r"city|region|asn|isp|org|geo|location|(?:net_?)?mask)(?:_|$)",
        value_pattern=r"[0-9A-Fa-f:.]{2,45}(?:%[\w.-]{1,16})?",
        validator="ipv4_or_ipv6",
    ),
    Rule(
        key="date_of_birth",
        label="Date of birth",
        tag="PII.DateOfBirth",
        sensitivity="confidential",
        name_pattern=_words(
            r"dob|d_o_b|birth_?(?:date|day|dt)|date_?of_?birth|date_?birth"
            r"|geburts_?(?:datum|tag)|geb_?datum|fecha_?(?:de_?)?nacimiento|date_?de_?naissance"
        ),
        exclude_name_pattern=r"^(?:is|has)_|(?:^|_)(?:verified|verification|confirmed|type|format|"
        r"source|changed|updated|visibility|visible|public|reminder|greeting|discount|voucher|"
        r"coupon|email|sms|notification|campaign|at)(?:_|$)",
        value_pattern=(
            r"[0-9]{4}([-/.])[0-9]{1,2}\1[0-9]{1,2}"
            r"(?:[T ]00:00(?::00(?:\.0+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
            r"|[0-9]{1,2}([-/.])[0-9]{1,2}\2[0-9]{4}|[0-9]{8}"
        ),
        validator="date_of_birth",
    ),
    Rule(
        key="person_name",
        label="Person name",
        tag="PII.Name",
        sensitivity="confidential",
        name_pattern=_words(
            r"(?:first|last|middle|given|family|full|maiden|birth|sur|fore|nick|real|person"
            r"|customer|contact|employee|patient|student|member|applicant|card_?holder"
            r"|account_?holder|holder|recipient|sender|billing|shipping|beneficiary|guardian"
            r"|spouse|emergency_?contact)_?names?"
            r"|surname|forename|given_?names|firstname|lastname|fullname|vorname|nachname"
            r"|familienname|cardholder|card_holder|account_holder"
        ),
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:length|len|initial|initials|hash|phonetic|soundex|field|column|label|"
        r"prefix|suffix|title)(?:_|$)",
    ),
    Rule(
        key="postal_address",
        label="Postal address",
        tag="PII.Address",
        sensitivity="confidential",
        # "address" alone or after a postal qualifier: ip_address, email_address are not postal
        name_pattern=r"(?:^|(?:^|_)(?:street|postal|mailing|home|billing|shipping|delivery"
        r"|residential|invoice|correspondence|customer|contact|work|business|private|primary"
        r"|permanent|registered)_?)(?:address|addr|adresse)(?:_?line)?_?[0-9]*(?:_|$)|"
        + _words(
            r"anschrift|street(?:_?(?:name|line|number|no|nr))?_?[0-9]*|str(?:ass|aß)e"
            r"|hausnummer|house_?(?:number|no|nr)|post_?code|postal_?code|postleitzahl|plz"
            r"|zip(?:_?code)?|zipcode|po_?box|postfach"
        ),
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:zip_?(?:file|archive|path|url|size)|street_?view)(?:_|$)",
    ),
    Rule(
        key="location",
        label="City or place (quasi-identifier)",
        tag="PII.Location",
        sensitivity="internal",
        name_pattern=_words(
            r"city|town|municipality|locality|village|home_?town|place_?of_?birth|birth_?place"
            r"|geburtsort|wohnort|stadt|ort"
        ),
        exclude_name_pattern=_ABOUT + r"|(?:^|_)(?:code|population|size)(?:_|$)",
    ),
    Rule(
        key="geolocation",
        label="Geographic coordinates",
        tag="PII.Geolocation",
        sensitivity="confidential",
        name_pattern=_words(
            r"lat|lng|lon|latitude|longitude"
            r"|geo_?(?:lat|lng|lon|latitude|longitude|location|point|position|coordinates?)"
            r"|geolocation|coordinates?|gps(?:_?(?:position|location|coordinates?|lat|lon|lng))?"
            r"|lat_?(?:lng|lon|long)|latlng|latlon"
        ),
        exclude_name_pattern=_ABOUT
        + r"|(?:^|_)(?:accuracy|precision|source|provider|system|reference|datum|delta|offset|"
        r"min|max)(?:_|$)",
        value_pattern=r"[+-]?[0-9]{1,3}(?:\.[0-9]+)?(?:\s*[,; ]\s*[+-]?[0-9]{1,3}(?:\.[0-9]+)?)?",
        validator="geo_coordinate",
    ),
    Rule(
        key="health",
        label="Health data (GDPR Art. 9)",
        tag="PII.Special.Health",
        sensitivity="restricted",
        name_pattern=_words(
            r"health|healthcare|medical|medications?|medicines?"
            r"|diagnos(?:is|es|ed)|diseases?|illness(?:es)?|disabilit(?:y|ies)|handicap"
            r"|allerg(?:y|ies)|blood_?(?:type|group)|symptoms?|prescriptions?"
            r"|icd(?:_?(?:9|10|11))?_?codes?|icd_?(?:9|10|11)|sick_?(?:leave|note|days)|sickness"
            r"|pregnan(?:t|cy)|vaccinations?|vaccinated|vaccine|mental_?health|therapy|therapist"
            r"|hiv|bmi|medical_?record|mrn|krankheit(?:en)?|diagnose|behinderung"
            r"|krankmeldung|blutgruppe"
        ),
        exclude_name_pattern=r"(?:^|_)(?:health_?checks?|healthz|health_?(?:url|endpoint|probe|port|"
        r"path|interval|timeout|score))(?:_|$)",
        name_only=True,
    ),
    Rule(
        key="genetic",
        label="Genetic data (GDPR Art. 9)",
        tag="PII.Special.Genetic",
        sensitivity="restricted",
        name_pattern=_words(
            r"genetics?|genome|genomic|genotype|dna(?:_?(?:sample|test|profile|sequence))?"
            r"|gene_?(?:test|sequence|panel|variant)s?|haplogroup"
        ),
        name_only=True,
    ),
    Rule(
        key="biometric",
        label="Biometric data (GDPR Art. 9)",
        tag="PII.Special.Biometric",
        sensitivity="restricted",
        name_pattern=_words(
            r"biometrics?"
            r"|(?:finger|palm|voice|face)_?prints?_?(?:image|template|scan|data|minutiae)s?"
            r"|faceprints?|voiceprints?|palmprints?|iris_?(?:scan|template|image|code)s?"
            r"|retina(?:l)?_?(?:scan|image)s?|face_?(?:template|encoding|embedding|geometry)s?"
            r"|facial_?(?:template|encoding|embedding|geometry|recognition)s?"
        ),
        name_only=True,
    ),
    Rule(
        key="ethnic_origin",
        label="Racial or ethnic origin (GDPR Art. 9)",
        tag="PII.Special.EthnicOrigin",
        sensitivity="restricted",
        name_pattern=_words(r"race|racial|ethnic|ethnicity|ethnie"),
        exclude_name_pattern=r"(?:^|_)race_?(?:track|course|result|results|distance|event|time|"
        r"number|day|condition|conditions)(?:_|$)|(?:horse|car|bike|boat|foot)_?race",
        name_only=True,
    ),
    Rule(
        key="political_opinion",
        label="Political opinions (GDPR Art. 9)",
        tag="PII.Special.PoliticalOpinion",
        sensitivity="restricted",
        name_pattern=_words(
            r"political_?(?:party|affiliation|opinions?|views?|orientation|leaning|preference)"
            r"|politics|party_?(?:affiliation|membership|preference)"
            r"|voting_?(?:intention|preference)|partei_?(?:zugehoerigkeit|mitgliedschaft)"
        ),
        name_only=True,
    ),
    Rule(
        key="religion",
        label="Religious or philosophical beliefs (GDPR Art. 9)",
        tag="PII.Special.Religion",
        sensitivity="restricted",
        name_pattern=_words(
            r"religion|religions|religious|faith|philosophical_?beliefs?|confession|konfession"
            r"|religionszugeh(?:oe|ö)rigkeit|kirchensteuer|church_?tax"
            r"|church_?member(?:ship)?"
        ),
        name_only=True,
    ),
    Rule(
        key="trade_union",
        label="Trade union membership (GDPR Art. 9)",
        tag="PII.Special.TradeUnion",
        sensitivity="restricted",
        name_pattern=_words(
            r"trade_?unions?|labou?r_?unions?|union_?member(?:ship)?|unioni[sz]ed"
            r"|gewerkschaft(?:s_?mitglied(?:schaft)?)?"
        ),
        name_only=True,
    ),
    Rule(
        key="sexual_orientation",
        label="Sex life or sexual orientation (GDPR Art. 9)",
        tag="PII.Special.SexualOrientation",
        sensitivity="restricted",
        name_pattern=_words(
            r"sexual_?(?:orientation|preferences?|life|identity)|sexuality|sex_?life|lgbtq?"
        ),
        name_only=True,
    ),
    Rule(
        key="criminal_record",
        label="Criminal convictions and offences (GDPR Art. 10)",
        tag="PII.Special.CriminalRecord",
        sensitivity="restricted",
        name_pattern=_words(
            r"criminal(?:_?(?:record|records|history|conviction|convictions|offen[cs]es?"
            r"|background))?|convictions?|convicted|offender|police_?record|vorstrafen?"
            r"|fuehrungszeugnis"
        ),
        name_only=True,
    ),
    Rule(
        key="credential",
        label="Password, key or token",
        tag="Security.Credential",
        sensitivity="restricted",
        name_pattern=_words(
            r"pass(?:word|wd|_?phrase)|pwd|passwort|kennwort|secret"
            r"|(?:api|access|secret|private|encryption|signing|master|license|licence|ssh|gpg|pgp"
            r"|session)_?key|apikey|token|credentials?|otp_?(?:seed|secret)|totp"
            r"|recovery_?codes?|backup_?codes?"
        ),
        exclude_name_pattern=r"^(?:is|has|was|must|needs|force|should)_|(?:^|_)(?:id|type|kind|"
        r"count|at|on|date|time|ts|expires?|expiry|expiration|expires_in|ttl|length|len|policy|"
        r"strength|min|max|required|changed|updated|created|rotated|rotation|last_used|used|set|"
        r"enabled|algorithm|algo|scheme|version|scope|scopes|name|label|description|url|uri|"
        r"endpoint|provider|issuer|fingerprint|prefix|hint_shown|reset_required)(?:_|$)",
        value_pattern=(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*"
            r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
            r"|gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,250}"
            r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,247}"
            r"|\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}"
            r"|\$argon2(?:id|i|d)\$\S+"
            r"|(?:pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|sha1|md5)\$\S+"
            r"|\$[156]\$[^\s$]{1,16}\$[./A-Za-z0-9]{22,86}"
        ),
        name_only=True,
    ),
)


# --- classification --------------------------------------------------------------------------


def normalise_column_name(name: str) -> str:
    """Lower-case snake_case: "customerEmail" -> "customer_email", "IPAddress" -> "ip_address",
    "E-Mail Adresse" -> "e_mail_adresse"."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", (name or "").strip())
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return re.sub(r"[\W_]+", "_", text.lower()).strip("_")


@lru_cache(maxsize=1024)
def _compiled(pattern: str, flags: int = 0) -> re.Pattern:
    return re.compile(pattern, flags)


_PLAIN_DIGITS = re.compile(r"[0-9]+")


def _as_text(value) -> str:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _integral(text: str) -> str:
    """A number without a fractional part as its digits, so 4111111111111111.0 reads as a card."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if number.is_finite() and number == number.to_integral_value() and abs(number) < 10**20:
        return str(int(number))
    return text


def _usable_values(samples: Sequence[str] | None, data_type: str) -> list[str]:
    values = []
    for raw in samples or ():
        if raw is None:
            continue
        text = _as_text(raw).strip()
        if data_type == "json" and text.startswith('"'):
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = None
            if isinstance(decoded, str):
                text = decoded.strip()
        if data_type in NUMERIC_TYPES:
            text = _integral(text)
        if text:
            values.append(text)
    return values


def _applies(rule: Rule, data_type: str) -> bool:
    if data_type in BOOLEAN_TYPES:
        return rule.special_category
    if data_type in TEMPORAL_TYPES:
        return rule.special_category or rule.validator in DATE_VALIDATORS
    return True


def _name_matches(rule: Rule, name: str) -> bool:
    if not rule.name_pattern or not _compiled(rule.name_pattern, re.IGNORECASE).search(name):
        return False
    exclude = rule.exclude_name_pattern
    return not (exclude and _compiled(exclude, re.IGNORECASE).search(name))


class RuleSet(tuple):
    """Rules to classify many columns with: built once, it keeps their name patterns
    compiled into one alternation."""

    @functools.cached_property
    def combined(self) -> re.Pattern | None:
        patterns = [rule.name_pattern for rule in self if rule.name_pattern]
        try:
            return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
        except re.error:
            return None


def _any_name_matches(rules: RuleSet, name: str) -> bool:
    if rules.combined is None:
        return any(_name_matches(rule, name) for rule in rules)
    return rules.combined.search(name) is not None


def _value_matches(rule: Rule, value: str) -> bool:
    if len(value) > MAX_VALUE_LENGTH or not _compiled(rule.value_pattern).fullmatch(value):
        return False
    return not rule.validator or VALIDATORS[rule.validator](value)


def _decide(rule: Rule, name: str, data_type: str, values: list[str] | None) -> Suggestion | None:
    if not _applies(rule, data_type):
        return None
    named = _name_matches(rule, name)
    checks_values = bool(rule.value_pattern) and data_type not in BOOLEAN_TYPES
    if (
        checks_values
        and values is not None
        and (named or rule.validator not in CONFIRMING_VALIDATORS)
    ):
        hits = [value for value in values if _value_matches(rule, value)]
        if not named and rule.validator not in CHECKSUM_VALIDATORS:
            hits = [value for value in hits if not _PLAIN_DIGITS.fullmatch(value)]
        ratio = len(hits) / len(values)
        if ratio >= rule.min_hit_ratio:
            method = "name+values" if named else "values"
            return Suggestion(rule.key, rule.tag, method, round(ratio, 4), len(values))
    if named and (rule.name_only or not checks_values or values is None):
        return Suggestion(rule.key, rule.tag, "name", None, 0)
    return None


def _sensitivity_rank(rule: Rule) -> int:
    return SENSITIVITIES.index(rule.sensitivity) if rule.sensitivity in SENSITIVITIES else 99


def classify(
    column_name: str,
    data_type: str,
    samples: Sequence[str] | None,
    rules: Iterable[Rule],
    *,
    min_samples: int = 5,
) -> list[Suggestion]:
    """Every rule that fires for the column, strongest evidence first (see the module docstring).
    `data_type` is Steward's normalised type; `samples` are sampled values as text, or None
    when the column was not sampled."""
    name = normalise_column_name(column_name)
    data_type = (data_type or "").strip().lower()
    values = _usable_values(samples, data_type)
    usable = values if len(values) >= max(1, min_samples) else None
    rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    if usable is None and not _any_name_matches(rules, name):
        return []  # without values only a name can fire a rule: one search decides
    ranked = []
    for order, rule in enumerate(rules):
        suggestion = _decide(rule, name, data_type, usable)
        if suggestion is not None:
            evidence = METHODS.index(suggestion.method)
            ranked.append(
                (
                    (evidence, _sensitivity_rank(rule), -(suggestion.hit_ratio or 0), order),
                    suggestion,
                )
            )
    ranked.sort(key=lambda item: item[0])
    return [suggestion for _, suggestion in ranked]
