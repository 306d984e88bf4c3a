"""OpenRTB notice values: macros, prices (clear and encrypted), currency, loss reasons."""

from __future__ import annotations

import base64

import pytest

from tracker.adtech.openrtb import (
    AUDIT_PRICE,
    LOSS_REASONS,
    MAX_CPM_MICROS,
    NoticeError,
    Price,
    impression_micros,
    loss_reason_name,
    parse_price,
    unsubstituted_macro,
)
from tracker.adtech.pricecrypto import PriceCrypto, token_digest

# Example keys and tokens of Google's "Decrypt Price Confirmations" page
# (https://developers.google.com/authorized-buyers/rtb/response-guide/decrypt-price),
# also used by Google's privatedatacommunicationprotocol sample (TestSample.java) and
# by independent implementations' tests (e.g. the doubleclickcrypto package on PyPI).
# All three tokens share the initialization vector b"abc123def456ghi7".
GOOGLE_DOC_KEYS = (
    "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
    "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
)
GOOGLE_DOC_IV = b"abc123def456ghi7"
GOOGLE_DOC_TOKENS = [
    ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw", 100),
    ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCAWJRxOgA", 1900),
    ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemC32prpWWw", 2700),
]

# Google's own library test: google/openrtb-doubleclick,
# doubleclick-core/src/test/java/com/google/doubleclick/crypto/DoubleClickCryptoTest.java
# (KEYS, INITV, PLAIN_PRICE = 1.2, CIPHER_PRICE).
LIBRARY_KEYS = (
    "sIxwz7yw62yrfoLGt12lIHKuYrK_S5kLuApI2BQe7Ac=",
    "v3fsVcMBMMHYzRhi7SpM0sdqwzvAxM6KPTu9OtVod5I=",
)
LIBRARY_IV = bytes.fromhex("E679B0BE000CD1400123456789ABCDEF")
LIBRARY_TOKEN = "5nmwvgAM0UABI0VniavN72_sy3T6V9ohlpvOpA=="

TEST_IV = bytes(range(16))
NOT_BASE64 = ("bad_price", "encrypted price is not web-safe base64")


@pytest.fixture(scope="module")
def crypto() -> PriceCrypto:
    return PriceCrypto.from_config(*GOOGLE_DOC_KEYS)


def failure(call, *args, **kwargs) -> tuple[str, str]:
    """Return the reason and message of the NoticeError that ``call`` raises."""
    with pytest.raises(NoticeError) as info:
        call(*args, **kwargs)
    assert str(info.value) == info.value.message
    return info.value.reason, info.value.message


def flip(token: str, index: int) -> str:
    """Flip the lowest bit of one decoded byte of a token and re-encode it."""
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


# unsubstituted_macro


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${AUCTION_PRICE}", "AUCTION_PRICE"),
        ("%24%7BAUCTION_PRICE%7D", "AUCTION_PRICE"),
        ("%24%7bAUCTION_PRICE%7d", "AUCTION_PRICE"),
        ("$%7BAUCTION_CURRENCY}", "AUCTION_CURRENCY"),
        ("${AUCTION_PRICE:B64}", "AUCTION_PRICE"),
        ("%24%7BAUCTION_PRICE%3AB64%7D", "AUCTION_PRICE"),
        ("id-${AUCTION_ID}-x", "AUCTION_ID"),
        ("2.5", None),
        ("", None),
        ("$AUCTION_PRICE", None),
        ("${}", None),
        ("{AUCTION_PRICE}", None),
    ],
)
def test_unsubstituted_macro(value, expected):
    assert unsubstituted_macro(value) == expected


# parse_price: clear prices


@pytest.mark.parametrize(
    ("raw", "micros"),
    [
        ("2.5", 2_500_000),
        ("0.731", 731_000),
        ("12", 12_000_000),
        ("0.000001", 1),
        ("0", 0),
        ("0.0", 0),
        (" 1.5 ", 1_500_000),
        ("007.10", 7_100_000),
        ("100000", 100_000_000_000),
        # More than 6 places: rounded half-even to whole micros.
        ("0.0000005", 0),
        ("0.0000015", 2),
        ("0.0000025", 2),
        ("0.00000251", 3),
        ("0.30000000000000004", 300_000),
        ("1.23456789", 1_234_568),
    ],
)
def test_clear_price(raw, micros):
    assert parse_price(raw) == Price(billable=True, cpm_micros=micros, encrypted=False)


@pytest.mark.parametrize(
    "raw", ["-1", "+1", "1e3", "1E3", "NaN", "nan", "inf", "Infinity", "1,5", "1_000", ".5", "5."]
)
def test_malformed_price_is_bad_price(raw):
    message = (
        f"price {raw!r} is not a decimal CPM like 1.25 (no sign, exponent or separators), "
        "or is an encrypted price and no price keys are configured"
    )
    assert failure(parse_price, raw) == ("bad_price", message)


def test_non_ascii_digits_are_bad_price():
    assert failure(parse_price, "\u0661\u0662")[0] == "bad_price"


def test_long_value_is_cut_in_the_message():
    reason, message = failure(parse_price, "x" * 1000)
    assert reason == "bad_price"
    assert f"price {'x' * 40 + '...'!r} is not" in message


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_price(raw):
    message = "price is missing or empty: the notice URL must carry ${AUCTION_PRICE}"
    assert failure(parse_price, raw) == ("missing_price", message)


@pytest.mark.parametrize(
    "raw", ["${AUCTION_PRICE}", "%24%7BAUCTION_PRICE%7D", "%24%7bAUCTION_PRICE%7d"]
)
def test_literal_price_macro(raw):
    message = "price is the literal ${AUCTION_PRICE}: the exchange did not substitute the macro"
    assert failure(parse_price, raw) == ("unsubstituted_macro", message)


@pytest.mark.parametrize("raw", ["AUDIT", "audit", "Audit", " AUDIT "])
def test_audit_is_not_billable(raw):
    assert parse_price(raw) == Price(billable=False, cpm_micros=None, encrypted=False)
    assert parse_price(raw) == AUDIT_PRICE


def test_price_above_limit():
    message = (
        "price 100000.000001 CPM is above the limit of 100000: "
        "the price must be in currency units per thousand impressions, not micros"
    )
    assert failure(parse_price, "100000.000001") == ("bad_price", message)


def test_price_sent_in_micros_is_refused():
    assert failure(parse_price, "2500000000000")[0] == "bad_price"


def test_huge_price_is_refused_without_decimal_errors():
    assert failure(parse_price, "9" * 100)[0] == "bad_price"


def test_limit_can_be_raised_for_small_currency_units():
    price = parse_price("250000", max_cpm_micros=1_000_000 * 1_000_000)
    assert price.cpm_micros == 250_000_000_000
    assert MAX_CPM_MICROS == 100_000_000_000


# parse_price: encrypted prices


@pytest.mark.parametrize(("token", "micros"), GOOGLE_DOC_TOKENS)
def test_google_documented_tokens(crypto, token, micros):
    assert crypto.decrypt(token) == micros
    digest = token_digest(token)
    assert parse_price(token, crypto) == Price(True, micros, encrypted=True, token=digest)


@pytest.mark.parametrize(("token", "micros"), GOOGLE_DOC_TOKENS)
def test_encrypt_reproduces_google_documented_tokens(crypto, token, micros):
    assert crypto.encrypt(micros, GOOGLE_DOC_IV) == token


def test_google_library_vector():
    crypto = PriceCrypto.from_config(*LIBRARY_KEYS)
    assert crypto.decrypt(LIBRARY_TOKEN) == 1_200_000
    assert crypto.encrypt(1_200_000, LIBRARY_IV) + "==" == LIBRARY_TOKEN


def test_padding_is_optional(crypto):
    token, micros = GOOGLE_DOC_TOKENS[1]
    assert crypto.decrypt(token + "==") == micros


@pytest.mark.parametrize("micros", [0, 1, 2_500_000, MAX_CPM_MICROS, (1 << 64) - 1])
def test_round_trip(crypto, micros):
    assert crypto.decrypt(crypto.encrypt(micros, TEST_IV)) == micros


@pytest.mark.parametrize(
    ("part", "index"),
    [("iv", 0), ("iv", 15), ("price", 16), ("price", 23), ("signature", 24), ("signature", 27)],
)
def test_tampering_fails_integrity(crypto, part, index):
    token = crypto.encrypt(2_500_000, TEST_IV)
    message = (
        "encrypted price failed its integrity check: the token was altered "
        "or the configured price keys are not the exchange's"
    )
    assert failure(parse_price, flip(token, index), crypto) == ("price_integrity", message)


def test_wrong_keys_fail_integrity(crypto):
    other = PriceCrypto.from_config(*LIBRARY_KEYS)
    assert failure(parse_price, other.encrypt(2_500_000, TEST_IV), crypto)[0] == "price_integrity"


def test_swapped_keys_fail_integrity():
    swapped = PriceCrypto.from_config(GOOGLE_DOC_KEYS[1], GOOGLE_DOC_KEYS[0])
    assert failure(swapped.decrypt, GOOGLE_DOC_TOKENS[0][0])[0] == "price_integrity"


@pytest.mark.parametrize("size", [27, 29, 16, 1])
def test_wrong_length_token(crypto, size):
    token = base64.urlsafe_b64encode(bytes(size)).rstrip(b"=").decode()
    message = (
        f"encrypted price is {size} bytes, expected 28: "
        "the value is truncated or is not a price token"
    )
    assert failure(parse_price, token, crypto) == ("bad_price", message)


@pytest.mark.parametrize(
    "token",
    [
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msa",  # 37 characters: not whole bytes
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw=",  # wrong padding
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw===",
    ],
)
def test_bad_base64_token(crypto, token):
    assert failure(crypto.decrypt, token) == NOT_BASE64
    assert failure(parse_price, token, crypto)[0] == "bad_price"


def test_standard_alphabet_token_is_bad_price(crypto):
    token = crypto.encrypt(2_500_000, bytes([0xFB] * 16)).replace("-", "+").replace("_", "/")
    message = (
        f"price {token[:40]!r} is not a decimal CPM like 1.25 (no sign, exponent or separators)"
    )
    assert failure(parse_price, token, crypto) == ("bad_price", message)


def test_decrypt_rejects_foreign_characters(crypto):
    assert failure(crypto.decrypt, "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6ms!w") == NOT_BASE64


def test_token_without_keys_is_bad_price():
    reason, message = failure(parse_price, GOOGLE_DOC_TOKENS[0][0])
    assert reason == "bad_price"
    assert message.endswith("or is an encrypted price and no price keys are configured")


def test_clear_price_still_accepted_with_keys(crypto):
    assert parse_price("2.5", crypto) == Price(billable=True, cpm_micros=2_500_000, encrypted=False)


def test_audit_with_keys(crypto):
    assert parse_price("AUDIT", crypto) == AUDIT_PRICE


def test_encrypted_price_above_limit(crypto):
    token = crypto.encrypt(MAX_CPM_MICROS + 1, TEST_IV)
    reason, message = failure(parse_price, token, crypto)
    assert reason == "bad_price"
    assert message.startswith("price 100000.000001 CPM is above the limit of 100000:")


def test_encrypt_checks_its_arguments(crypto):
    with pytest.raises(ValueError, match="iv must be 16 bytes, got 15"):
        crypto.encrypt(1, bytes(15))
    with pytest.raises(ValueError, match="does not fit an unsigned 64-bit integer"):
        crypto.encrypt(-1, TEST_IV)
    with pytest.raises(ValueError, match="does not fit an unsigned 64-bit integer"):
        crypto.encrypt(1 << 64, TEST_IV)


# PriceCrypto.from_config


def test_hex_keys_equal_base64_keys():
    hex_keys = [base64.urlsafe_b64decode(key).hex() for key in GOOGLE_DOC_KEYS]
    crypto = PriceCrypto.from_config(*hex_keys)
    token, micros = GOOGLE_DOC_TOKENS[0]
    assert crypto.decrypt(token) == micros
    assert PriceCrypto.from_config(*[key.upper() for key in hex_keys]).decrypt(token) == micros


def test_unpadded_and_standard_base64_keys():
    unpadded = [key.rstrip("=") for key in GOOGLE_DOC_KEYS]
    standard = [key.replace("-", "+").replace("_", "/") for key in GOOGLE_DOC_KEYS]
    token, micros = GOOGLE_DOC_TOKENS[2]
    assert PriceCrypto.from_config(*unpadded).decrypt(token) == micros
    assert PriceCrypto.from_config(*standard).decrypt(token) == micros


def test_raw_key_bytes():
    keys = [base64.urlsafe_b64decode(key) for key in GOOGLE_DOC_KEYS]
    token, micros = GOOGLE_DOC_TOKENS[1]
    assert PriceCrypto(*keys).decrypt(token) == micros


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("", GOOGLE_DOC_KEYS[1]), "price encryption key is empty"),
        ((GOOGLE_DOC_KEYS[0], "  "), "price integrity key is empty"),
        (("not a key!", GOOGLE_DOC_KEYS[1]), "price encryption key is neither hex nor base64"),
        ((GOOGLE_DOC_KEYS[0], "=="), "price integrity key is neither hex nor base64"),
    ],
)
def test_bad_config_keys(keys, message):
    with pytest.raises(ValueError) as info:
        PriceCrypto.from_config(*keys)
    assert str(info.value) == message


def test_empty_raw_keys():
    with pytest.raises(ValueError, match="must not be empty"):
        PriceCrypto(b"", b"key")


# impression_micros


@pytest.mark.parametrize(
    ("cpm_micros", "expected"),
    [
        (2_500_000, 2500),
        (1500, 2),  # 1.5 -> 2
        (2500, 2),  # 2.5 -> 2, half to even
        (3500, 4),
        (2501, 3),
        (2499, 2),
        (499, 0),
        (500, 0),
        (501, 1),
        (0, 0),
        (731_000, 731),
    ],
)
def test_impression_micros(cpm_micros, expected):
    assert impression_micros(cpm_micros) == expected


# loss reasons


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0, "Bid Won"),
        (1, "Internal Error"),
        (10, "Missing Minimum Creative Approval Data"),
        (100, "Bid was Below Auction Floor"),
        (102, "Lost to Higher Bid"),
        (103, "Lost to a Bid for a Deal"),
        (104, "Buyer Seat Blocked"),
        (200, "Creative Filtered - General; Reason Unknown"),
        (211, "Creative Filtered - Ad Type Exclusions"),
        (215, "Creative Filtered - App Bundle Exclusions"),
        (11, "unknown"),
        (105, "unknown"),
        (216, "unknown"),
        (499, "unknown"),
        (-1, "unknown"),
        (500, "exchange-specific"),
        (1000, "exchange-specific"),
    ],
)
def test_loss_reason_name(code, name):
    assert loss_reason_name(code) == name


def test_loss_reasons_cover_the_standard_list():
    assert sorted(LOSS_REASONS) == [*range(11), *range(100, 105), *range(200, 216)]


def test_loss_reasons_are_read_only():
    with pytest.raises(TypeError):
        LOSS_REASONS[1] = "changed"  # type: ignore[index]


def test_a_token_is_named_by_its_bytes_not_its_spelling(crypto):
    token, _ = GOOGLE_DOC_TOKENS[0]
    padded = token + "=" * (-len(token) % 4)
    assert parse_price(padded, crypto).token == parse_price(token, crypto).token
    other, _ = GOOGLE_DOC_TOKENS[1]
    assert parse_price(other, crypto).token != parse_price(token, crypto).token
    assert parse_price("2.5", crypto).token is None
