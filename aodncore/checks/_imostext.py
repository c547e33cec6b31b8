"""The fixed IMOS texts: required values, wordings (as patterns), vocabularies and the e-mail rule."""

from __future__ import annotations

import re
from typing import Any

GLOBAL = "global attribute"

PROJECT = "Integrated Marine Observing System (IMOS)"
AODN = "Australian Ocean Data Network (AODN)"
EMII = "eMarine Information Infrastructure (eMII)"
LICENSE_1_4 = "http://creativecommons.org/licenses/by/4.0/"

QC_CONVENTIONS_COMMON = [
    "ARGO quality control procedure",
    "BOM (SST and Air-Sea flux) quality control procedure",
    "WOCE quality control procedure",
]

VERTICAL_REFERENCE_DATUMS = ["Mean Sea Level (MSL)", "sea surface", "sea bottom", "sensor"]

# local_time_zone: any quarter hour from UTC-12 to UTC+14 (quirk Q1 fixed; the old list stopped at +11.5)
TZ_MIN, TZ_MAX = -12.0, 14.0

_RE = re.DOTALL  # required phrases may follow a multi-line prefix (quirk Q5)

DISTRIBUTION_STATEMENT_1_3 = re.compile(
    r".*Data may be re-used, provided that related metadata .+ appropriately acknowledged\."
    r'.*"as is" without any warranty as to fitness for a particular purpose\.',
    _RE,
)
DISCLAIMER_1_4 = re.compile(
    r'.*Data, products and services from IMOS are provided "as is" without any warranty as to fitness for a '
    r"particular purpose\.",
    _RE,
)
VOCABULARY_1_4 = re.compile(r".*CF.*[Ss]tandard [Nn]ame [Tt]able.*\d+", _RE)

# acknowledgement wordings
ACK_SSI = re.compile(
    r'.*acknowledge the source of the material in (?:the|this) format: "Data was sourced from the Integrated '
    r"Marine Observing System \(IMOS\) - IMOS is supported by the Australian Government through the National "
    r"Collaborative Research Infrastructure Strategy(?: \(NCRIS\))? and the Super Science Initiative",
    _RE,
)
ACK_2016 = re.compile(
    r'.*acknowledge the source of the material derived from IMOS in (?:the|this) format: "Data was sourced from '
    r"the Integrated Marine Observing System \(IMOS\) - IMOS is a national collaborative research infrastructure, "
    r"supported by the Australian Government",
    _RE,
)
ACK_2020 = re.compile(
    r".*Data was sourced from Australia['\u2019]s Integrated Marine Observing System \(IMOS\) [-\u2013] IMOS is "
    r"enabled by the National Collaborative Research Infrastructure Strategy \(NCRIS\)\."
    r'(?: It is operated by a consortium of institutions[^"]*)?"',
    _RE,
)
# flexible 2016 / SSI wording accepted by 1.4, anchored at the start of the attribute (kept, see Q5)
ACK_2016_FLEXIBLE = re.compile(
    r"Any users (?:\(including re-packagers\) )?of IMOS data(?: \(including re-packagers\))? are required to "
    r"clearly acknowledge the source of the material(?: derived from IMOS)? in (?:this|the) format: "
    r'"Data was sourced from the Integrated Marine Observing System \(IMOS\) - IMOS is '
    r"(?:a national collaborative research infrastructure, )?supported by the Australian Government",
    _RE,
)
ACK_2020_TEXT = (
    "Data was sourced from Australia's Integrated Marine Observing System (IMOS) - IMOS is enabled by the "
    'National Collaborative Research Infrastructure Strategy (NCRIS)."'
)



# The classic plugin accepts any text that *ends* with "@domain" (whatever comes before the last "@": several
# addresses separated by ";", "," or spaces, a "mailto:" prefix, ...), with a final domain label of 2-3 letters.
# Ours accepts a superset (quirk Q2 in docs/imos-checks.md): the same shape with a final label of 2 letters or more,
# the classic escaping slip ("x@y.1{1,3}") kept for parity, and IP literals "x@[1.2.3.4]".
_EMAIL_ATTRIBUTE_RE = re.compile(
    r"^.+@(?:\[?[A-Za-z0-9.-]+\.(?:[A-Za-z]{2,}|[0-9]\{1,3\})\]?|\[\d{1,3}(?:\.\d{1,3}){3}\])\n?\Z",
    re.DOTALL,
)


def is_email_attribute_value(value: Any) -> bool:
    """True when an ``author_email`` / ``principal_investigator_email`` value ends with a well-formed address.

    Everything before the last address is free text, so ``'a@x.edu.au; b@x.edu.au'`` passes; non-strings fail.
    """
    return isinstance(value, str) and _EMAIL_ATTRIBUTE_RE.match(value) is not None
