"""SMS length as carriers count it: GSM-7 septets (extension characters count two and are never
split) or UCS-2 code units (an emoji counts two and is never split), in 160/153 or 70/67 segments."""

import pytest

from alerts.notifications.sms import gsm7_fold, is_gsm7, sms_length


def test_plain_text_is_gsm7_in_one_segment_up_to_160_characters():
    assert sms_length("a" * 160).encoding == "GSM-7"
    assert (sms_length("a" * 160).segments, sms_length("a" * 160).units) == (1, 160)
    longer = sms_length("a" * 161)
    assert (longer.segments, longer.capacity) == (2, 306)  # 153 + 153: the header takes 7 septets each


@pytest.mark.parametrize("char", ["€", "[", "]", "{", "}", "\\", "~", "^", "|"])
def test_extension_table_characters_stay_gsm7_and_count_two(char):
    length = sms_length(f"Fee: 5{char}")
    assert (length.encoding, length.units, length.ucs2_characters) == ("GSM-7", 8, [])
    assert sms_length(char * 80).segments == 1  # 160 septets
    assert sms_length(char * 81).segments == 2  # 162


def test_an_escape_pair_is_never_split_across_segments():
    # 306 septets would fill two segments exactly, but the € cannot straddle them.
    text = "a" * 152 + "€" + "a" * 152
    assert sms_length(text).units == 306
    assert sms_length(text).segments == 3


def test_a_curly_quote_forces_ucs2_and_is_named():
    text = "Don’t share it"
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == ("UCS-2", 14, 1)
    assert length.ucs2_characters == ["’"]
    assert length.describe_ucs2() == "’ (right single quotation mark)"


def test_ucs2_holds_70_in_one_segment_then_67_per_segment():
    assert sms_length("’" + "a" * 69).segments == 1
    assert sms_length("’" + "a" * 70).segments == 2
    assert sms_length("’" + "a" * 133).segments == 2  # 134 units: 67 + 67
    assert sms_length("’" + "a" * 133).capacity == 134
    assert sms_length("’" + "a" * 134).segments == 3


def test_an_emoji_takes_two_units_and_is_never_split():
    length = sms_length("Hi 🙂")
    assert (length.encoding, length.units, length.ucs2_characters) == ("UCS-2", 5, ["🙂"])
    text = "a" * 66 + "🙂" + "a" * 66  # 134 units: two segments of 67 if the pair could be cut
    assert sms_length(text).segments == 3


def test_accented_letters_in_the_gsm7_alphabet_do_not_force_ucs2_but_others_do():
    assert is_gsm7("é è à ù ì ò É Ñ ñ Ü ü ß Ä Ö ¿ ¡")
    for char in ("ê", "ç", "ô", "á", "ó", "Ł"):
        assert sms_length(f"x{char}").encoding == "UCS-2", char


def test_values_are_folded_into_the_gsm7_alphabet():
    assert gsm7_fold("Łódź – “Zürich” … ça") == 'Lodz - "Zürich" ... ca'
    assert is_gsm7(gsm7_fold("São Paulo, Kraków, İstanbul, Reykjavík 🙂"))
