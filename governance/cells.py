"""The one way Steward writes a spreadsheet cell: every CSV and XLSX exporter (the bulk
export now, reports later) passes each value through safe_cell().

A text value loses the characters XML 1.0 forbids (control characters other than tab, line
feed and carriage return, unpaired surrogates, U+FFFE and U+FFFF: openpyxl refuses them and
Excel cannot open a sheet that holds them), and then, if it starts like a formula (`=`, `+`,
`-`, `@`, tab or carriage return), gets a leading single quote, as OWASP advises against
CSV/formula injection. The order matters: "\\x00=cmd" is a formula once the NUL is gone.
Other values (numbers, dates, None) are returned as they are.
"""

import re

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def safe_cell(value):
    if not isinstance(value, str):
        return value
    value = NOT_XML.sub("", value)
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
