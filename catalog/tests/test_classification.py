"""The PII classification engine on its own: validators, every built-in rule by name and by
values, the thresholds that decide, and the demo shop's columns. Plain pytest, no database."""

import dataclasses
import re
from datetime import date

import pytest

from catalog.classification import (
    BUILTIN_RULES,
    CHECKSUM_VALIDATORS,
    CONFIRMING_VALIDATORS,
    MAX_VALUE_LENGTH,
    METHODS,
    SENSITIVITIES,
    VALIDATORS,
    Rule,
    Suggestion,
    classify,
    normalise_column_name,
)

RULES_BY_KEY = {rule.key: rule for rule in BUILTIN_RULES}


def run(column, data_type="string", samples=None, rules=BUILTIN_RULES, **kwargs):
    return classify(column, data_type, samples, rules, **kwargs)


def keys(column, data_type="string", samples=None, **kwargs):
    return {suggestion.rule for suggestion in run(column, data_type, samples, **kwargs)}


def one(column, data_type, samples, rule_key):
    found = [s for s in run(column, data_type, samples) if s.rule == rule_key]
    assert len(found) == 1, run(column, data_type, samples)
    return found[0]


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("email", "email"),
        ("customerEmail", "customer_email"),
        ("DateOfBirth", "date_of_birth"),
        ("IPAddress", "ip_address"),
        ("clientIP", "client_ip"),
        ("ZIPCode", "zip_code"),
        ("addressLine1", "address_line1"),
        ("E-Mail Adresse", "e_mail_adresse"),
        ("  FIRST_NAME ", "first_name"),
        ("card__number", "card_number"),
        ("t.email", "t_email"),
        ("Straße", "straße"),
        ("", ""),
    ],
)
def test_column_names_are_normalised_to_lower_snake_case(raw, normalised):
    assert normalise_column_name(raw) == normalised


# --- validators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "79927398713", "0000000000"],
)
def test_luhn_accepts_valid_check_digits(number):
    assert VALIDATORS["luhn"](number)


@pytest.mark.parametrize("number", ["4111111111111112", "79927398710", "1", "", "4111x111", "٤١١١"])
def test_luhn_rejects_bad_check_digits_and_non_digits(number):
    assert not VALIDATORS["luhn"](number)


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",  # Visa
        "4012888888881881",  # Visa
        "4222222222222",  # Visa, 13 digits
        "5555555555554444",  # Mastercard
        "2223003122003222",  # Mastercard 2-series
        "378282246310005",  # American Express
        "6011111111111117",  # Discover
        "3530111333300000",  # JCB
        "30569309025904",  # Diners Club
        "5555 5555 5555 4444",
    ],
)
def test_payment_card_accepts_test_numbers_of_known_issuers(number):
    assert VALIDATORS["payment_card"](number)


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # bad check digit
        "7000000000000005",  # Luhn-valid, no issuer starts with 7
        "1000000000000008",  # Luhn-valid, no issuer starts with 1
        "9000000000000001",  # Luhn-valid, no issuer starts with 9
        "424242424242",  # 12 digits
        "41111111111111111111",  # 20 digits
        "4111 **** **** 1111",
    ],
)
def test_payment_card_rejects_bad_check_digits_unknown_issuers_and_lengths(number):
    assert not VALIDATORS["payment_card"](number)


@pytest.mark.parametrize(
    "value",
    [
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        "de89370400440532013000",
        "NO9386011117947",
        "FR1420041010050500013M02606",
    ],
)
def test_iban_accepts_valid_ibans(value):
    assert VALIDATORS["iban"](value)


@pytest.mark.parametrize(
    "value",
    [
        "DE89370400440532013001",  # wrong checksum
        "GB82WEST12345698765431",  # wrong checksum
        "DE8937040044053201300",  # one character short for DE
        "DE893704004405320130000",  # one character long for DE
        "DE89-3704-0044-0532-0130-00",
        "89DE370400440532013000",
        "",
    ],
)
def test_iban_rejects_wrong_checksums_and_lengths(value):
    assert not VALIDATORS["iban"](value)


@pytest.mark.parametrize(
    "value",
    # 078-05-1120 is the "Woolworth wallet" number: voided, but it passes the issuance rules.
    ["123-45-6789", "123 45 6789", "123456789", "078-05-1120", "665-01-0001", "899-99-9999"],
)
def test_us_ssn_accepts_numbers_the_issuance_rules_allow(value):
    assert VALIDATORS["us_ssn"](value)


@pytest.mark.parametrize(
    "value",
    [
        "000-12-3456",  # area 000
        "666-12-3456",  # area 666
        "900-12-3456",  # area 9xx
        "999-12-3456",
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "123-45 6789",  # mixed separators
        "123-456-789",
        "12-345-6789",
        "1234567890",
    ],
)
def test_us_ssn_rejects_invalid_area_group_serial_and_shapes(value):
    assert not VALIDATORS["us_ssn"](value)


@pytest.mark.parametrize("value", ["AB123456C", "AB 12 34 56 C", "ab123456c", "ZY987654D"])
def test_uk_nino_accepts_valid_numbers(value):
    assert VALIDATORS["uk_nino"](value)


@pytest.mark.parametrize(
    "value",
    [
        "BG123456A",  # unallocated prefix
        "GB123456A",
        "NK123456A",
        "DA123456A",  # D never first
        "AO123456A",  # O never second
        "AB123456E",  # suffix only A-D
        "AB12345C",
        "A1123456C",
    ],
)
def test_uk_nino_rejects_unallocated_prefixes_letters_and_suffixes(value):
    assert not VALIDATORS["uk_nino"](value)


@pytest.mark.parametrize(
    "value", ["192.168.0.1", "81.23.4.200", "2001:db8::1", "::1", "fe80::1%eth0", "::ffff:1.2.3.4"]
)
def test_ip_validator_accepts_ipv4_and_ipv6(value):
    assert VALIDATORS["ipv4_or_ipv6"](value)


@pytest.mark.parametrize(
    "value", ["256.1.1.1", "1.2.3", "01.02.03.04", "12:30:45", "1", "abc", "", "2001:db8::g"]
)
def test_ip_validator_rejects_non_addresses(value):
    assert not VALIDATORS["ipv4_or_ipv6"](value)


@pytest.mark.parametrize(
    "value",
    [
        "1975-03-14",
        "1975-03-14T00:00:00",
        "1975-03-14 00:00:00+00:00",
        "1975/03/14",
        "14.03.1975",
        "14/03/1975",
        "03/14/1975",
        "19750314",
        "1900-01-01",
        date.today().isoformat(),
    ],
)
def test_date_of_birth_accepts_plausible_dates(value):
    assert VALIDATORS["date_of_birth"](value)


@pytest.mark.parametrize(
    "value",
    [
        "1899-12-31",  # before 1900
        f"{date.today().year + 1}-01-01",  # the future
        "1975-02-30",
        "13/13/1975",
        "2025-01-01 09:00:00",  # a time of day: an event, not a birth date
        "1975-03",
        "yesterday",
        "",
    ],
)
def test_date_of_birth_rejects_impossible_and_implausible_dates(value):
    assert not VALIDATORS["date_of_birth"](value)


@pytest.mark.parametrize(
    "value",
    [
        "anna.schmidt.1@example.com",
        "o'brien+tag@mail.example.co.uk",
        "müller@exämple.de",
        "ANNA@EXAMPLE.COM",
        "x@xn--80ak6aa92e.com",
    ],
)
def test_email_validator_accepts_addresses(value):
    assert VALIDATORS["email"](value)


@pytest.mark.parametrize(
    "value",
    [
        "anna@",
        "@example.com",
        "anna@example",
        "anna..b@example.com",
        ".anna@example.com",
        "anna.@example.com",
        "anna @example.com",
        "a" * 65 + "@example.com",
        "anna@-example.com",
        "anna@example.c0m",
    ],
)
def test_email_validator_rejects_non_addresses(value):
    assert not VALIDATORS["email"](value)


@pytest.mark.parametrize(
    "value",
    [
        "+49 30 1234567",
        "+4930123456",
        "0049 30 1234567",
        "030 1234567",
        "030/1234567",
        "+49 (0)30 1234567",
        "07700 900123",
        "(212) 555-0123",
        "212-555-0123",
        "212.555.0123",
        "1-212-555-0123",
        "555-0123",
        "+1 (212) 555-0123 ext. 12",
        "4930123456",  # a plain run: the validator accepts it, classify() wants the name too
    ],
)
def test_phone_validator_accepts_international_national_and_nanp_formats(value):
    assert VALIDATORS["phone"](value)


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        "12345",  # too short
        "+12",
        "+0 30 1234567",  # no country code starts with 0
        "2024-01-15",  # dates
        "01.02.2024",
        "01/02/2024",
        "078-05-1120",  # US SSN shape
        "192.168.1.10",
        "1.234.567",
        "1234567.89",
        "2025-000123",
        "1234567890123456",  # 16 digits: more than E.164 allows
        "-1234567",
    ],
)
def test_phone_validator_rejects_dates_numbers_and_short_values(value):
    assert not VALIDATORS["phone"](value)


@pytest.mark.parametrize("value", ["52.520008", "-13.404954", "180", "52.52, 13.40", "-33.9;151.2"])
def test_geo_coordinate_accepts_coordinates_in_range(value):
    assert VALIDATORS["geo_coordinate"](value)


@pytest.mark.parametrize("value", ["181", "-180.5", "95.0, 13.4", "52.52, 190", "north", "1.2.3"])
def test_geo_coordinate_rejects_out_of_range_and_text(value):
    assert not VALIDATORS["geo_coordinate"](value)


@pytest.mark.parametrize("name", sorted(VALIDATORS))
@pytest.mark.parametrize(
    "garbage", ["", " ", "٣٣٣٣٣٣٣٣٣٣٣٣٣", "𝟙𝟚𝟛𝟜𝟝𝟞𝟟", "\x00", "NaN", "1e400", "-----", "x" * 10_000]
)
def test_validators_answer_false_on_garbage_without_raising(name, garbage):
    assert VALIDATORS[name](garbage) is False


# --- rules as data ---------------------------------------------------------------------------


def test_builtin_rules_are_consistent():
    assert len(RULES_BY_KEY) == len(BUILTIN_RULES)
    for rule in BUILTIN_RULES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", rule.key), rule.key
        assert re.fullmatch(r"(?:PII|Security)(?:\.[A-Z][A-Za-z]+){1,2}", rule.tag), rule.tag
        assert rule.sensitivity in SENSITIVITIES, rule.key
        assert rule.name_pattern, rule.key
        assert not rule.validator or (rule.value_pattern and rule.validator in VALIDATORS)
        if rule.tag.startswith("PII.Special."):
            assert rule.name_only and rule.sensitivity == "restricted", rule.key
    assert VALIDATORS.keys() >= CHECKSUM_VALIDATORS
    assert VALIDATORS.keys() >= CONFIRMING_VALIDATORS


def test_builtin_rules_fit_the_catalogs_rule_columns():
    for rule in BUILTIN_RULES:
        assert len(rule.key) <= 64 and len(rule.label) <= 200 and len(rule.validator) <= 50
        for pattern in (rule.name_pattern, rule.exclude_name_pattern, rule.value_pattern):
            assert len(pattern) <= 500, rule.key


def test_builtin_rules_survive_a_round_trip_through_stored_fields():
    for rule in BUILTIN_RULES:
        stored = {field.name: getattr(rule, field.name) for field in dataclasses.fields(Rule)}
        assert Rule(**stored) == rule


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name_pattern": "("}, "name_pattern is not a valid regex"),
        ({"exclude_name_pattern": "[a-"}, "exclude_name_pattern is not a valid regex"),
        ({"value_pattern": "*"}, "value_pattern is not a valid regex"),
        ({"validator": "astrology"}, "unknown validator"),
        ({"min_hit_ratio": 0}, "min_hit_ratio"),
        ({"min_hit_ratio": 1.5}, "min_hit_ratio"),
        ({"name_pattern": "", "value_pattern": ""}, "needs a name pattern or a value pattern"),
    ],
)
def test_an_invalid_rule_is_refused_when_built(changes, message):
    fields = {"key": "custom", "label": "Custom", "tag": "HR.Custom", "sensitivity": ""}
    fields.update({"name_pattern": "custom", **changes})
    with pytest.raises(ValueError, match=message):
        Rule(**fields)


def test_a_stewards_rule_stored_as_data_classifies_like_a_builtin():
    employee_number = Rule(
        key="employee_number",
        label="Employee number",
        tag="HR.EmployeeNumber",
        sensitivity="",  # the catalog lets stewards leave it blank
        name_pattern=r"(?:^|_)(?:employee|staff)_?(?:number|no)(?:_|$)",
        value_pattern=r"E-[0-9]{6}",
    )
    values = [f"E-{n:06d}" for n in range(100, 110)]
    found = classify("badge", "string", values, [employee_number])
    assert found == [Suggestion("employee_number", "HR.EmployeeNumber", "values", 1.0, 10)]
    found = classify("staffNo", "string", values, [employee_number])
    assert found[0].method == "name+values"


def test_plain_digit_values_need_the_name_unless_a_checksum_backs_them():
    digits = Rule(
        key="member_number",
        label="Member number",
        tag="PII.MemberNumber",
        sensitivity="confidential",
        name_pattern=r"(?:^|_)member_?(?:number|no)(?:_|$)",
        value_pattern=r"[0-9]{6}",
    )
    values = [str(n) for n in range(123456, 123466)]
    assert classify("quantity", "string", values, [digits]) == []
    assert classify("member_no", "string", values, [digits])[0].method == "name+values"


# --- each rule by name -----------------------------------------------------------------------

NAME_CASES = [
    # email
    ("email", "string", {"email"}),
    ("EmailAddress", "string", {"email"}),
    ("customer_email", "text", {"email"}),
    ("e-mail", "string", {"email"}),
    ("mail", "string", {"email"}),
    ("email2", "string", {"email"}),
    ("email_opt_in", "string", set()),
    ("email_opt_in", "boolean", set()),
    ("email_verified", "boolean", set()),
    ("is_email_verified", "string", set()),
    ("email_sent_at", "timestamp", set()),
    ("email_subject", "string", set()),
    ("email_count", "integer", set()),
    ("email_domain", "string", set()),
    ("mail_server", "string", set()),
    # phone
    ("phone", "string", {"phone"}),
    ("phoneNumber", "string", {"phone"}),
    ("home_phone", "string", {"phone"}),
    ("telephone", "string", {"phone"}),
    ("mobile", "string", {"phone"}),
    ("mobile_number", "string", {"phone"}),
    ("cell_phone", "string", {"phone"}),
    ("fax_no", "string", {"phone"}),
    ("tel", "string", {"phone"}),
    ("phone", "integer", {"phone"}),
    ("phone_type", "string", set()),
    ("phone_model", "string", set()),
    ("headphones", "string", set()),
    ("microphone", "string", set()),
    ("mobile_app_version", "string", set()),
    ("is_mobile", "boolean", set()),
    ("table_cell", "string", set()),
    # payment card and security code
    ("card_number", "string", {"payment_card"}),
    ("creditCardNumber", "string", {"payment_card"}),
    ("credit_card", "string", {"payment_card"}),
    ("cc_number", "string", {"payment_card"}),
    ("pan", "string", {"payment_card"}),
    ("card_type", "string", set()),
    ("card_brand", "string", set()),
    ("card_expiry", "string", set()),
    ("card_number_last4", "string", set()),
    ("masked_card_number", "string", set()),
    ("cvv", "string", {"card_security_code"}),
    ("CVC2", "integer", {"card_security_code"}),
    ("card_verification_code", "string", {"card_security_code"}),
    ("cvc_check", "string", set()),
    ("cvv_provided", "boolean", set()),
    # bank account
    ("iban", "string", {"iban"}),
    ("bank_account_number", "string", {"iban"}),
    ("bic", "string", set()),
    ("bank_name", "string", set()),
    # national ids
    ("ssn", "string", {"us_ssn"}),
    ("social_security_number", "string", {"us_ssn"}),
    ("ssn_last4", "string", set()),
    ("nino", "string", {"uk_nino"}),
    ("national_insurance_number", "string", {"uk_nino"}),
    ("national_id", "string", {"national_id"}),
    ("passport_number", "string", {"national_id"}),
    ("passport", "string", {"national_id"}),
    ("tax_id", "string", {"national_id"}),
    ("steuer_id", "string", {"national_id"}),
    ("personnummer", "integer", {"national_id"}),
    ("personal_number", "string", {"national_id"}),
    ("drivers_license_number", "string", {"national_id"}),
    ("passport_expiry", "date", set()),
    ("passport_country", "string", set()),
    # ip address
    ("ip", "string", {"ip_address"}),
    ("client_ip", "string", {"ip_address"}),
    ("IPAddress", "string", {"ip_address"}),
    ("remote_addr", "string", {"ip_address"}),
    ("last_login_ip", "string", {"ip_address"}),
    ("ip_country", "string", set()),
    ("ship_date", "date", set()),
    # date of birth
    ("dob", "date", {"date_of_birth"}),
    ("birth_date", "date", {"date_of_birth"}),
    ("DateOfBirth", "timestamp", {"date_of_birth"}),
    ("birthday", "string", {"date_of_birth"}),
    ("geburtsdatum", "date", {"date_of_birth"}),
    ("birth_year", "integer", set()),
    ("birthday_voucher", "string", set()),
    # person name
    ("first_name", "string", {"person_name"}),
    ("lastName", "string", {"person_name"}),
    ("surname", "string", {"person_name"}),
    ("full_name", "text", {"person_name"}),
    ("given_names", "string", {"person_name"}),
    ("cardholder_name", "string", {"person_name"}),
    ("vorname", "string", {"person_name"}),
    ("name", "string", set()),
    ("product_name", "string", set()),
    ("file_name", "string", set()),
    ("company_name", "string", set()),
    ("username", "string", set()),
    ("display_name", "string", set()),
    ("last_name_changed_at", "timestamp", set()),
    # postal address and location
    ("street_address", "string", {"postal_address"}),
    ("address", "text", {"postal_address"}),
    ("address_line1", "string", {"postal_address"}),
    ("addressLine2", "string", {"postal_address"}),
    ("shipping_address", "text", {"postal_address"}),
    ("billing_address", "text", {"postal_address"}),
    ("postal_code", "string", {"postal_address"}),
    ("zip", "integer", {"postal_address"}),
    ("zip_code", "string", {"postal_address"}),
    ("postcode", "string", {"postal_address"}),
    ("house_number", "string", {"postal_address"}),
    ("customer_billing_address", "text", {"postal_address"}),
    ("shippingAddress", "text", {"postal_address"}),
    ("email_address", "string", {"email"}),
    ("remote_address", "string", {"ip_address"}),
    ("from_address", "string", set()),
    ("ip_address", "string", {"ip_address"}),
    ("mac_address", "string", set()),
    ("wallet_address", "string", set()),
    ("address_id", "integer", set()),
    ("address_type", "string", set()),
    ("address_verified", "boolean", set()),
    ("zip_file", "string", set()),
    ("city", "string", {"location"}),
    ("place_of_birth", "string", {"location"}),
    ("city_id", "integer", set()),
    ("country", "string", set()),
    # geolocation
    ("latitude", "float", {"geolocation"}),
    ("lng", "decimal", {"geolocation"}),
    ("geo_point", "geometry", {"geolocation"}),
    ("long_description", "text", set()),
    ("location_accuracy", "float", set()),
    # special categories, by name whatever the type
    ("health_status", "string", {"health"}),
    ("diagnosis", "text", {"health"}),
    ("medication", "string", {"health"}),
    ("blood_type", "string", {"health"}),
    ("has_disability", "boolean", {"health"}),
    ("diagnosis_date", "date", {"health"}),
    ("health_check_url", "string", set()),
    ("treatment_group", "string", set()),
    ("genetic_test_result", "string", {"genetic"}),
    ("dna_sample", "string", {"genetic"}),
    ("fingerprint_template", "binary", {"biometric"}),
    ("biometric_data", "binary", {"biometric"}),
    ("fingerprint", "string", set()),  # device, certificate and card fingerprints are not biometric
    ("ethnicity", "string", {"ethnic_origin"}),
    ("race", "string", {"ethnic_origin"}),
    ("race_track", "string", set()),
    ("political_party", "string", {"political_opinion"}),
    ("political_ads", "string", set()),
    ("sexual_content", "string", set()),
    ("health_score", "decimal", set()),  # a CRM's customer health, not a person's
    ("religion", "string", {"religion"}),
    ("church_tax", "boolean", {"religion"}),
    ("trade_union_member", "boolean", {"trade_union"}),
    ("sexual_orientation", "string", {"sexual_orientation"}),
    ("criminal_record", "text", {"criminal_record"}),
    # credentials
    ("password", "string", {"credential"}),
    ("password_hash", "string", {"credential"}),
    ("passwd", "string", {"credential"}),
    ("api_key", "string", {"credential"}),
    ("apiKey", "string", {"credential"}),
    ("access_token", "text", {"credential"}),
    ("client_secret", "string", {"credential"}),
    ("ssh_private_key", "text", {"credential"}),
    ("credentials", "json", {"credential"}),
    ("password_changed_at", "timestamp", set()),
    ("password_changed_at", "string", set()),
    ("password_last_changed", "timestamp", set()),
    ("must_change_password", "boolean", set()),
    ("token_count", "integer", set()),
    ("max_tokens", "integer", set()),
    ("api_key_id", "string", set()),
    ("public_key", "text", set()),
    # nothing
    ("status", "string", set()),
    ("sku", "string", set()),
    ("description", "text", set()),
    ("price_cents", "integer", set()),
    ("created_at", "timestamp", set()),
    ("marketing_opt_in", "boolean", set()),
]


@pytest.mark.parametrize(("column", "data_type", "expected"), NAME_CASES)
def test_rules_by_column_name_without_samples(column, data_type, expected):
    assert keys(column, data_type) == expected
    for suggestion in run(column, data_type):
        assert (suggestion.method, suggestion.hit_ratio, suggestion.sample_size) == (
            "name",
            None,
            0,
        )


# --- each rule by values ---------------------------------------------------------------------

VALUE_CASES = [
    ("email", "string", [f"user{n}@example.com" for n in range(10)]),
    ("phone", "string", [f"+49 30 {1234560 + n}" for n in range(10)]),
    ("phone", "string", [f"(212) 555-01{n:02d}" for n in range(10)]),
    ("payment_card", "string", ["4111111111111111", "5555555555554444", "378282246310005"] * 3),
    ("payment_card", "integer", ["4111111111111111", "5555555555554444", "6011111111111117"] * 3),
    ("payment_card", "decimal", ["4111111111111111.0", "5555555555554444.00"] * 5),
    ("iban", "string", ["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32"] * 5),
    ("us_ssn", "string", [f"123-45-{6780 + n}" for n in range(10)]),
    ("uk_nino", "string", [f"AB12345{n}C" for n in range(10)]),
    ("ip_address", "string", [f"81.23.4.{n}" for n in range(1, 6)] + ["2001:db8::1"] * 5),
    (
        "credential",
        "text",
        ["$2b$12$" + "a" * 53, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig"] * 5,
    ),
    ("credential", "text", ["-----BEGIN RSA PRIVATE KEY-----\nMIIEow" + "A" * 150] * 5),
]


@pytest.mark.parametrize(("rule_key", "data_type", "values"), VALUE_CASES)
def test_rules_fire_by_values_under_a_neutral_name(rule_key, data_type, values):
    suggestion = one("col_7", data_type, values, rule_key)
    assert (suggestion.method, suggestion.hit_ratio) == ("values", 1.0)
    assert suggestion.sample_size == len(values)
    assert suggestion.tag == RULES_BY_KEY[rule_key].tag


@pytest.mark.parametrize(
    ("data_type", "values"),
    [
        ("string", ["yes", "no"] * 5),
        ("string", [f"SKU-{n:04d}" for n in range(10)]),
        ("text", [f"Espresso beans {n}kg from our range." for n in range(10)]),
        ("string", ["paid", "shipped", "delivered", "cancelled", "paid"] * 2),
        ("string", [f"{n:02d}/27" for n in range(1, 11)]),  # card expiry
        ("string", ["4111111111111112", "5555555555554445"] * 5),  # bad Luhn
        ("string", [f"2025-01-{n:02d} 09:00:00" for n in range(1, 11)]),
        ("timestamp", [f"2025-01-{n:02d}T09:00:00" for n in range(1, 11)]),
        ("date", [f"1980-01-{n:02d}" for n in range(1, 11)]),  # any date is not a birth date
        ("string", [f"1980-01-{n:02d}" for n in range(1, 11)]),
        ("integer", [str(n) for n in range(1, 11)]),
        ("integer", [str(1_000_000_000 + n * 7919) for n in range(10)]),  # ids, timestamps
        ("string", [str(1_700_000_000 + n) for n in range(10)]),
        ("string", [f"0301234{n:03d}" for n in range(10)]),  # plain digits: could be anything
        ("string", [f"123456{n:03d}" for n in range(10)]),  # plain-digit SSNs
        ("decimal", ["52.520008", "13.404954", "-33.9", "151.2", "0.5"] * 2),  # coordinates?
        ("float", ["19.99", "4.5", "120.0", "3.14", "2.71"] * 2),
        ("json", ['{"a": 1}', "[1, 2]", '"x"', "null", "true"] * 2),
        ("uuid", ["6f1c2c84-2d0c-4f59-9a31-1f2f5c0c9d2e"] * 10),
        ("string", ["DE89370400440532013001"] * 10),  # wrong IBAN checksum
        ("string", ["000-12-3456", "666-12-3456", "123-00-4567"] * 4),  # invalid SSNs
    ],
)
def test_ordinary_values_under_a_neutral_name_suggest_nothing(data_type, values):
    assert run("col_7", data_type, values) == []


@pytest.mark.parametrize(
    ("column", "data_type", "values", "rule_key"),
    [
        ("phone", "string", [f"0301234{n:03d}" for n in range(10)], "phone"),
        ("phone", "integer", [f"4930123{n:03d}" for n in range(10)], "phone"),
        ("ssn", "string", [f"123456{n:03d}" for n in range(10)], "us_ssn"),
        ("date_of_birth", "date", [f"1980-01-{n:02d}" for n in range(1, 11)], "date_of_birth"),
        ("birthday", "string", [f"{n:02d}.03.1975" for n in range(1, 11)], "date_of_birth"),
        ("dob", "integer", [f"198001{n:02d}" for n in range(1, 11)], "date_of_birth"),
        (
            "latitude",
            "decimal",
            ["52.520008", "48.137154", "-33.9", "0", "51.5"] * 2,
            "geolocation",
        ),
    ],
)
def test_ambiguous_values_confirm_a_matching_name(column, data_type, values, rule_key):
    suggestion = one(column, data_type, values, rule_key)
    assert (suggestion.method, suggestion.hit_ratio, suggestion.sample_size) == (
        "name+values",
        1.0,
        10,
    )


@pytest.mark.parametrize(
    ("column", "data_type", "values"),
    [
        ("phone", "string", ["yes"] * 10),
        ("phone", "string", [str(n) for n in range(1, 11)]),
        ("email", "string", ["n/a", "none", "-", "unknown", "x"] * 2),
        ("card_number", "string", ["4111 **** **** 1111"] * 10),
        ("iban", "string", ["DE89370400440532013001"] * 10),
        ("ssn", "string", ["000-00-0000"] * 10),
        ("client_ip", "string", ["localhost", "example.com"] * 5),
        ("date_of_birth", "string", [f"{date.today().year + 1}-01-01"] * 10),
        ("birth_date", "string", ["unknown"] * 10),
        ("latitude", "string", ["north", "south"] * 5),
    ],
)
def test_a_matching_name_alone_does_not_fire_when_the_values_disagree(column, data_type, values):
    assert run(column, data_type, values) == []


def test_name_only_rules_fire_whatever_the_values():
    assert (
        one("password", "string", ["hunter2", "correct horse"] * 5, "credential").method == "name"
    )
    assert one("cvv", "string", ["123", "4567"] * 5, "card_security_code").method == "name"
    assert one("diagnosis", "text", ["J45.9 asthma"] * 10, "health").method == "name"
    assert one("first_name", "string", ["Anna", "Ben"] * 5, "person_name").method == "name"
    suggestion = one("api_token", "string", ["ghp_" + "a1B2" * 9] * 10, "credential")
    assert (suggestion.method, suggestion.hit_ratio) == ("name+values", 1.0)


# --- thresholds ------------------------------------------------------------------------------

GOOD = [f"person{n}@example.com" for n in range(10)]
BAD = ["n/a"] * 10


@pytest.mark.parametrize(
    ("good", "expected"),
    [(7, None), (8, 0.8), (9, 0.9), (10, 1.0)],
    ids=["7/10", "8/10", "9/10", "10/10"],
)
def test_the_hit_ratio_must_reach_the_rules_minimum(good, expected):
    values = GOOD[:good] + BAD[: 10 - good]
    found = run("contact", "string", values)
    if expected is None:
        assert found == []
    else:
        assert found == [Suggestion("email", "PII.Email", "values", expected, 10)]


def test_empty_and_null_values_are_not_counted():
    values = [*GOOD[:9], "n/a", "", "   ", None, None]
    assert run("contact", "string", values) == [Suggestion("email", "PII.Email", "values", 0.9, 10)]


def test_a_rules_own_minimum_ratio_applies():
    lenient = dataclasses.replace(RULES_BY_KEY["email"], min_hit_ratio=0.5)
    values = GOOD[:5] + BAD[:5]
    assert classify("contact", "string", values, [RULES_BY_KEY["email"]]) == []
    assert classify("contact", "string", values, [lenient])[0].hit_ratio == 0.5


def test_too_few_samples_leave_the_decision_to_the_name():
    assert run("email", "string", GOOD[:4]) == [Suggestion("email", "PII.Email", "name", None, 0)]
    assert run("email", "string", ["yes"] * 4) == [
        Suggestion("email", "PII.Email", "name", None, 0)
    ]
    assert run("email", "string", ["", " ", None] * 5) == [
        Suggestion("email", "PII.Email", "name", None, 0)
    ]
    assert run("contact", "string", GOOD[:4]) == []


def test_min_samples_is_adjustable():
    assert run("contact", "string", GOOD[:3], min_samples=3)[0].method == "values"
    assert run("email", "string", GOOD[:9], min_samples=10)[0].method == "name"
    assert run("email", "string", ["yes"] * 3, min_samples=3) == []


def test_overlong_values_never_match():
    values = ["a" * MAX_VALUE_LENGTH + "@example.com"] * 10
    assert run("contact", "text", values) == []


# --- data types ------------------------------------------------------------------------------


def test_booleans_never_match_value_rules():
    assert run("email", "boolean", ["true", "false"] * 5) == []
    assert run("col_7", "boolean", GOOD) == []
    assert run("phone", "boolean") == []
    assert run("card_number", "boolean", ["1", "0"] * 5) == []
    assert keys("has_disability", "boolean", ["true", "false"] * 5) == {"health"}


def test_temporal_columns_only_take_birth_dates_and_special_categories():
    stamps = [f"2025-01-{n:02d} 09:00:00" for n in range(1, 11)]
    assert run("created_at", "timestamp", stamps) == []
    assert run("password_changed_at", "timestamp", stamps) == []
    assert run("email_verified_at", "timestamp", stamps) == []
    assert run("phone", "date") == []
    assert keys("dob", "date") == {"date_of_birth"}
    assert keys("vaccination_date", "date", stamps) == {"health"}


def test_numbers_stored_as_numbers_still_count():
    assert one("col_7", "integer", ["4111111111111111"] * 10, "payment_card").method == "values"
    assert one("card_number", "decimal", ["4111111111111111.000"] * 10, "payment_card").method == (
        "name+values"
    )
    assert run("order_ref", "integer", [str(4_930_123_456 + n) for n in range(10)]) == []
    assert one(
        "mobile", "integer", [str(4_930_123_456 + n) for n in range(10)], "phone"
    ).method == ("name+values")


def test_json_string_values_are_read_unquoted():
    values = [f'"{address}"' for address in GOOD]
    assert one("col_7", "json", values, "email").method == "values"


# --- order and privacy -----------------------------------------------------------------------


def test_strongest_evidence_comes_first():
    ssns = [f"123-45-{6780 + n}" for n in range(10)]
    found = run("passport_number", "string", ssns)
    assert [(s.rule, s.method) for s in found] == [("us_ssn", "values"), ("national_id", "name")]

    by_name = Rule(key="by_name", label="N", tag="X.N", sensitivity="internal", name_pattern="code")
    secret = Rule(key="secret", label="S", tag="X.S", sensitivity="restricted", name_pattern="code")
    by_values = Rule(
        key="by_values", label="V", tag="X.V", sensitivity="internal", value_pattern="C-.*"
    )
    both = Rule(
        key="both",
        label="B",
        tag="X.B",
        sensitivity="internal",
        name_pattern="code",
        value_pattern="C-1.*",
    )
    values = [f"C-{n}" for n in range(10, 20)]
    found = classify("code", "string", values, iter([by_name, secret, by_values, both]))
    assert [s.rule for s in found] == ["both", "by_values", "secret", "by_name"]
    assert [s.method for s in found] == ["name+values", "values", "name", "name"]
    assert METHODS == ("name+values", "values", "name")


def test_suggestions_never_carry_sampled_values():
    assert [f.name for f in dataclasses.fields(Suggestion)] == [
        "rule",
        "tag",
        "method",
        "hit_ratio",
        "sample_size",
    ]
    samples = GOOD + ["4111111111111111"] * 10 + ["hunter2"]
    for column in ("email", "card_number", "password", "col_7"):
        for suggestion in run(column, "string", samples):
            text = repr(suggestion)
            assert not any(value in text for value in samples)
            assert isinstance(suggestion.hit_ratio, float | type(None))
            with pytest.raises(dataclasses.FrozenInstanceError):
                suggestion.rule = "changed"


# --- the demo shop ---------------------------------------------------------------------------

FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hugo", "Ines", "Jonas"]
LAST = [
    "Schmidt",
    "Müller",
    "Weber",
    "Fischer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schulz",
    "Koch",
    "Wolf",
]
CITIES = [
    "Berlin",
    "Hamburg",
    "München",
    "Köln",
    "Leipzig",
    "Dresden",
    "Bremen",
    "Berlin",
    "Köln",
    "Bonn",
]
POSTAL = ["10115", "20095", "80331", "50667", "04109", "01067", "28195", "10115", "50667", "53111"]
STREETS = [
    f"{s} {n}"
    for s, n in zip(["Hauptstraße", "Gartenweg", "Lindenallee"] * 4, range(3, 13), strict=False)
]
CARDS = [
    "4000000000000002",
    "5100000000000008",
    "5500000000000004",
    "3712345678900004",  # 37 with 16 digits, as the demo generates them
    "4111111111111111",
    "5555555555554444",
    "4012888888881881",
    "5598765432100001",
    "5105105105105100",
    "4242424242424242",
]
STAMPS = [f"2025-0{1 + n % 9}-1{n} 1{n}:0{n}:00" for n in range(10)]

DEMO_SHOP = {
    "customers": [
        ("id", "integer", [str(n) for n in range(1, 11)]),
        ("first_name", "text", FIRST),
        ("last_name", "text", LAST),
        (
            "email",
            "text",
            [
                f"{first}.{last}.{n}@example.com".lower()
                for n, (first, last) in enumerate(zip(FIRST, LAST, strict=True))
            ],
        ),
        ("phone", "text", [f"+49 30 {4829173 + n * 1117}" for n in range(10)]),
        ("date_of_birth", "date", [f"19{50 + n * 4}-0{1 + n % 9}-{10 + n}" for n in range(10)]),
        ("street_address", "text", STREETS),
        ("city", "text", CITIES),
        ("postal_code", "text", POSTAL),
        ("country", "text", ["DE"] * 10),
        ("marketing_opt_in", "boolean", ["1", "0", "0", "1", "0"] * 2),
        ("created_at", "timestamp", STAMPS),
    ],
    "products": [
        ("id", "integer", [str(n) for n in range(1, 9)]),
        ("sku", "text", [f"SKU-{n:04d}" for n in range(1, 9)]),
        (
            "name",
            "text",
            ["Espresso beans 1kg", "Pour-over kettle", "Ceramic mug", "Hand grinder"] * 2,
        ),
        ("category", "text", ["coffee", "equipment", "tableware", "equipment"] * 2),
        (
            "description",
            "text",
            ["Espresso beans 1kg from our range.", "Ceramic mug from our range."] * 4,
        ),
        ("price_cents", "integer", ["1890", "4500", "1200", "8900", "249", "599", "1150", "2200"]),
        ("stock", "integer", ["12", "0", "500", "37", "88", "3", "250", "19"]),
    ],
    "orders": [
        ("id", "integer", [str(n) for n in range(1, 11)]),
        ("customer_id", "integer", [str(n) for n in (3, 3, 7, 12, 19, 19, 19, 44, 51, 60)]),
        ("ordered_at", "timestamp", STAMPS),
        (
            "status",
            "text",
            ["paid", "paid", "paid", "shipped", "delivered", "cancelled"] + ["paid"] * 4,
        ),
        (
            "shipping_address",
            "text",
            [f"{street}, {city}" for street, city in zip(STREETS, CITIES, strict=True)],
        ),
        (
            "total_cents",
            "integer",
            ["1890", "9000", "1449", "24570", "599", "2400", "1150", "3780", "249", "8900"],
        ),
    ],
    "order_items": [
        ("id", "integer", [str(n) for n in range(1, 11)]),
        ("order_id", "integer", [str(n) for n in (1, 1, 2, 3, 3, 3, 4, 5, 6, 7)]),
        ("product_id", "integer", [str(n) for n in (1, 3, 4, 2, 5, 8, 1, 6, 7, 3)]),
        ("quantity", "integer", ["1", "2", "3", "1", "1", "2", "3", "1", "2", "1"]),
        (
            "unit_price_cents",
            "integer",
            ["1890", "1200", "8900", "4500", "249", "2200", "1890", "599", "1150", "1200"],
        ),
    ],
    "payments": [
        ("id", "integer", [str(n) for n in range(1, 11)]),
        ("order_id", "integer", [str(n) for n in range(1, 11)]),
        (
            "cardholder_name",
            "text",
            [f"{first} {last}" for first, last in zip(FIRST, reversed(LAST), strict=True)],
        ),
        ("card_number", "text", CARDS),
        ("card_expiry", "text", [f"{1 + n:02d}/{26 + n % 6}" for n in range(10)]),
        (
            "amount_cents",
            "integer",
            ["1890", "9000", "1449", "24570", "599", "2400", "1150", "3780", "249", "8900"],
        ),
        ("paid_at", "timestamp", STAMPS),
        ("client_ip", "text", [f"{81 + n}.{23 * n % 256}.4.{200 - n}" for n in range(10)]),
    ],
}
DEMO_EXPECTED = {
    ("customers", "first_name"): {"person_name"},
    ("customers", "last_name"): {"person_name"},
    ("customers", "email"): {"email"},
    ("customers", "phone"): {"phone"},
    ("customers", "date_of_birth"): {"date_of_birth"},
    ("customers", "street_address"): {"postal_address"},
    ("customers", "city"): {"location"},
    ("customers", "postal_code"): {"postal_address"},
    ("orders", "shipping_address"): {"postal_address"},
    ("payments", "cardholder_name"): {"person_name"},
    ("payments", "card_number"): {"payment_card"},
    ("payments", "client_ip"): {"ip_address"},
}
# What a scan samples: text and numbers; flags and points in time are judged by name.
SAMPLED_TYPES = {"string", "text", "integer", "decimal", "other", "json"}


def classify_shop(sample):
    found = {}
    for table, columns in DEMO_SHOP.items():
        for column, data_type, values in columns:
            samples = values if sample(data_type) else None
            suggestions = run(column, data_type, samples)
            if suggestions:
                found[(table, column)] = {s.rule for s in suggestions}
    return found


def test_demo_sample_cards_are_luhn_valid():
    assert all(VALIDATORS["payment_card"](card) for card in CARDS)


@pytest.mark.parametrize(
    "sample",
    [lambda t: t in SAMPLED_TYPES, lambda t: True, lambda t: False],
    ids=["as-scanned", "every-column", "sampling-off"],
)
def test_the_demo_shop_is_classified_exactly(sample):
    assert classify_shop(sample) == DEMO_EXPECTED


def test_the_demo_shops_checkable_columns_are_confirmed_by_their_values():
    columns = {(t, c): (d, v) for t, cols in DEMO_SHOP.items() for c, d, v in cols}
    for (table, column), rule_key in [
        (("customers", "email"), "email"),
        (("customers", "phone"), "phone"),
        (("customers", "date_of_birth"), "date_of_birth"),
        (("payments", "card_number"), "payment_card"),
        (("payments", "client_ip"), "ip_address"),
    ]:
        data_type, values = columns[(table, column)]
        suggestion = one(column, data_type, values, rule_key)
        assert (suggestion.method, suggestion.hit_ratio, suggestion.sample_size) == (
            "name+values",
            1.0,
            10,
        ), (table, column)


def test_the_name_prefilter_agrees_with_rule_by_rule_matching():
    from catalog.classification import (
        RuleSet,
        _any_name_matches,
        _name_matches,
        normalise_column_name,
    )

    rules = RuleSet(BUILTIN_RULES)
    for column in [
        "email",
        "col_17",
        "customerPhone",
        "amount",
        "sku",
        "password_hash",
        "dob",
        "blood_type",
        "created_at",
        "street_address",
        "id",
    ]:
        name = normalise_column_name(column)
        assert _any_name_matches(rules, name) == any(_name_matches(r, name) for r in rules)
