"""SMS length as carriers count it: the GSM 03.38 7-bit alphabet (3GPP TS 23.038) when every
character is in it, else UCS-2 (UTF-16), and the segments a message is cut into.

One GSM-7 segment holds 160 septets; a longer message is sent in segments of 153 (7 septets go to
the concatenation header). A character of the extension table (€, [, ], {, }, \\, ~, ^, |, form feed)
costs two septets (an escape, then the character), and a pair is never split across segments.
A single character outside both tables switches the whole message to UCS-2: 70 code units in one
segment, 67 per segment beyond, an emoji (a surrogate pair) taking two units, never split.
"""

import unicodedata
from dataclasses import dataclass, field

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

# Typographic characters that word processors put in and that have a plain GSM-7 twin.
_PLAIN = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\u202f": " ",
    "\u2009": " ", "\u00b7": "-", "\u2022": "-", "\u0141": "L", "\u0142": "l", "\u0110": "D", "\u0111": "d",
    "\u00f0": "d", "\u00fe": "th", "\u00de": "Th", "\u0131": "i", "\u0153": "oe", "\u0152": "OE",
}  # fmt: skip


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def gsm7_fold(text: str) -> str:
    """`text` in the GSM-7 alphabet: typographic quotes and dashes made plain, accents the alphabet
    lacks dropped (Łódź → Lodz, ç → c), anything else left out. Used on the values put into an SMS
    (a city, a device), so that only the template's own text decides the encoding."""
    out = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
        elif ch in _PLAIN:
            out.append(_PLAIN[ch])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append("".join(c for c in base if c in GSM7_BASIC))
    return "".join(out)


def _pack(costs: list[int], capacity: int) -> int:
    """Segments needed for units of these costs, none split across two segments."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    capacity: int  # units the message's segments hold in all
    ucs2_characters: list[str] = field(default_factory=list)  # the characters that force UCS-2, in order

    @property
    def single_capacity(self) -> int:
        return GSM7_SINGLE if self.encoding == "GSM-7" else UCS2_SINGLE

    def describe_ucs2(self) -> str:
        return ", ".join(f"{ch} ({unicodedata.name(ch, f'U+{ord(ch):04X}').lower()})" for ch in self.ucs2_characters)


def sms_length(text: str) -> SmsLength:
    forcing = []
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION and ch not in forcing:
            forcing.append(ch)
    if not forcing:
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        units = sum(costs)
        if units <= GSM7_SINGLE:
            return SmsLength("GSM-7", units, 1, GSM7_SINGLE)
        segments = _pack(costs, GSM7_MULTI)
        return SmsLength("GSM-7", units, segments, segments * GSM7_MULTI)
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units = sum(costs)
    if units <= UCS2_SINGLE:
        return SmsLength("UCS-2", units, 1, UCS2_SINGLE, forcing)
    segments = _pack(costs, UCS2_MULTI)
    return SmsLength("UCS-2", units, segments, segments * UCS2_MULTI, forcing)
