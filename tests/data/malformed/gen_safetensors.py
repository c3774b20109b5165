#!/usr/bin/python3
"""gen_safetensors.py -- write the malformed safetensors corpus.

One file per rejection rule (FORMATS.md 1.4 plus weightvault's own rules)
into safetensors/<rule>.bin, each with <rule>.bin.expect whose first line is
a substring the error message of `wv verify` must contain. Run it from any
directory; it rewrites the corpus next to itself. The outputs are
committed, so this only needs running when a case is added.
"""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")


def st(header, data=b"", n=None):
    """A file: u64 length (n, or the header's), header, data."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def ent(dtype, shape, begin, end):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (
        dtype, shape, begin, end)


U8_1 = ent("U8", "[1]", 0, 1)
CASES = {}


def case(name, blob, expect):
    CASES[name] = (blob, expect)


case("file_too_small", b"\x08\x00\x00\x00", "not a recognised weights file")
case("empty_file", b"", "not a recognised weights file")
# Too small for the header-length probe, so they are not detected as
# safetensors at all; the precise messages are checked by the unit tests
# with the format forced.
case("header_too_large", b"\x3c\x00\x00\x00\x00\xff\xff\xff" + b"{}" * 8,
     "not a recognised weights file")
case("header_past_eof", st('{"a":' + U8_1 + '}', b"\x00", n=4096),
     "not a recognised weights file")
case("header_not_utf8",
     st(b'{"a\xff\xfe":' + U8_1.encode() + b"}", b"\x00"),
     "header is not valid UTF-8")
case("header_overlong_utf8",
     st(b'{"a\xc0\xaf":' + U8_1.encode() + b"}", b"\x00"),
     "header is not valid UTF-8")
case("header_utf8_surrogate",
     st(b'{"a\xed\xa0\x80":' + U8_1.encode() + b"}", b"\x00"),
     "header is not valid UTF-8")
case("not_json", st('{"a" ' + U8_1 + '}', b"\x00"), "not valid JSON")
case("not_an_object", st("  [1, 2, 3]"), "header is not a JSON object")
case("header_empty_string", st("        "), "header is not a JSON object")
case("unknown_dtype", st('{"w":' + ent("F128", "[1]", 0, 16) + "}",
                         b"\x00" * 16), "tensor 'w': unknown dtype 'F128'")
case("unsupported_dtype_f4", st('{"w":' + ent("F4", "[2]", 0, 1) + "}",
                                b"\x00"), "tensor 'w': unknown dtype 'F4'")
case("dtype_not_string", st('{"w":{"dtype":12,"shape":[1],'
                            '"data_offsets":[0,1]}}', b"\x00"),
     "expected a string")
case("offsets_not_from_zero", st('{"w":' + ent("U8", "[1]", 1, 2) + "}",
                                 b"\x00\x00"),
     "tensor 'w' has data_offsets [1, 2]")
case("offsets_gap", st('{"a":' + U8_1 + ',"b":' + ent("U8", "[1]", 2, 3)
                       + "}", b"\x00" * 3),
     "tensor 'b' has data_offsets [2, 3] but the previous tensor ends at 1")
case("offsets_overlap", st('{"a":' + ent("U8", "[2]", 0, 2) + ',"b":'
                           + ent("U8", "[2]", 1, 3) + "}", b"\x00" * 3),
     "tensor 'b' has data_offsets [1, 3] but the previous tensor ends at 2")
# tensor.rs test_json_attack: ten tensors all at [0, 16].
case("json_attack", st("{" + ",".join(
    '"weight_%d":%s' % (i, ent("F32", "[2,2]", 0, 16)) for i in range(10))
    + "}", b"\x00" * 16), "contiguous from 0")
case("offsets_end_before_begin",
     st('{"a":' + ent("U8", "[2]", 0, 2) + ',"c":' + ent("U8", "[0]", 2, 1)
        + "}", b"\x00\x00"),
     "tensor 'c' has data_offsets [2, 1]")
case("size_mismatch", st('{"w":' + ent("F32", "[2]", 0, 4) + "}",
                         b"\x00" * 4),
     "tensor 'w' has 4 bytes of data but dtype F32 and its shape need 8")
case("shape_overflow", st('{"w":' + ent("F32", "[18446744073709551614,2]",
                                        0, 8) + "}", b"\x00" * 8),
     "tensor 'w': shape size overflows")
case("shape_overflow_bits", st('{"w":' + ent("F64", "[9223372036854775807]",
                                             0, 8) + "}", b"\x00" * 8),
     "tensor 'w': shape size overflows")
case("number_over_64_bits", st('{"w":' + ent("U8", "[18446744073709551616]",
                                             0, 8) + "}", b"\x00" * 8),
     "integer does not fit in 64 bits")
case("trailing_bytes_polyglot",
     st('{"a":' + U8_1 + "}", b"\x00" + b"<html>polyglot</html>"),
     "trailing bytes")
case("truncated_data", st('{"w":' + ent("F32", "[4]", 0, 16) + "}",
                          b"\x00" * 10), "truncated")
case("duplicate_tensor_name",
     st('{"a":' + U8_1 + ',"a":' + ent("U8", "[1]", 1, 2) + "}",
        b"\x00\x00"), "duplicate tensor name 'a'")
case("duplicate_metadata_key",
     st('{"__metadata__":{"k":"1","k":"2"},"a":' + U8_1 + "}", b"\x00"),
     "duplicate __metadata__ key 'k'")
case("duplicate_metadata",
     st('{"__metadata__":{},"__metadata__":{},"a":' + U8_1 + "}", b"\x00"),
     "duplicate __metadata__")
case("metadata_value_number",
     st('{"__metadata__":{"epoch":3},"a":' + U8_1 + "}", b"\x00"),
     "__metadata__ value of 'epoch' is not a string")
case("metadata_value_object",
     st('{"__metadata__":{"cfg":{"x":"y"}},"a":' + U8_1 + "}", b"\x00"),
     "__metadata__ value of 'cfg' is not a string")
case("metadata_not_object",
     st('{"__metadata__":"format=pt","a":' + U8_1 + "}", b"\x00"),
     "__metadata__ is not an object")
case("too_many_dims",
     st('{"d":' + ent("U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) + "}", b"\x00"),
     "tensor 'd': more than 8 dimensions")
case("missing_dtype",
     st('{"w":{"shape":[1],"data_offsets":[0,1]}}', b"\x00"),
     "tensor 'w': missing field 'dtype'")
case("missing_shape",
     st('{"w":{"dtype":"U8","data_offsets":[0,1]}}', b"\x00"),
     "tensor 'w': missing field 'shape'")
case("missing_data_offsets",
     st('{"w":{"dtype":"U8","shape":[1]}}', b"\x00"),
     "tensor 'w': missing field 'data_offsets'")
case("data_offsets_three_numbers",
     st('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}', b"\x00"),
     "tensor 'w': data_offsets needs exactly two numbers")
case("data_offsets_one_number",
     st('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}}', b"\x00"),
     "tensor 'w': data_offsets needs two numbers")
case("negative_number",
     st('{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', b"\x00"),
     "expected a non-negative integer")
case("float_in_shape",
     st('{"w":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', b"\x00"),
     "found a fraction or exponent")
case("exponent_in_offsets",
     st('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1e0]}}', b"\x00"),
     "found a fraction or exponent")
case("leading_zero",
     st('{"w":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}}', b"\x00"),
     "leading zero")
case("shape_not_array",
     st('{"w":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}', b"\x00"),
     "tensor 'w': shape is not an array")
case("entry_not_object", st('{"w":[0,1]}'), "tensor 'w': entry is not a JSON object")
case("lone_high_surrogate",
     st('{"__metadata__":{"k":"\\ud83d"},"a":' + U8_1 + "}", b"\x00"),
     "lone high surrogate")
case("lone_low_surrogate",
     st('{"a\\ude00":' + U8_1 + "}", b"\x00"), "lone low surrogate")
case("bad_escape", st('{"a\\x41":' + U8_1 + "}", b"\x00"), "invalid escape")
case("control_char_in_string",
     st('{"a\nb":' + U8_1 + "}", b"\x00"), "control character in string")
case("unterminated_string", st('{"abc'), "unterminated string")
case("trailing_garbage", st('{"a":' + U8_1 + "} x", b"\x00"),
     "trailing characters after the JSON object")
case("two_objects", st('{"a":' + U8_1 + "}{}", b"\x00"),
     "trailing characters after the JSON object")
case("trailing_comma", st('{"a":' + U8_1 + ",}", b"\x00"),
     "expected a string")
case("nesting_bomb_unknown_field",
     st('{"w":{"x":' + "[" * 5000 + "]" * 5000 + ',"dtype":"U8","shape":[1],'
        '"data_offsets":[0,1]}}', b"\x00"), "nesting too deep")
case("empty_tensor_name", st('{"":' + U8_1 + "}", b"\x00"),
     "is empty or contains a NUL character")
case("nul_in_tensor_name", st('{"a\\u0000b":' + U8_1 + "}", b"\x00"),
     "is empty or contains a NUL character")
case("nul_in_metadata",
     st('{"__metadata__":{"k":"a\\u0000b"},"a":' + U8_1 + "}", b"\x00"),
     "contains a NUL character")


def main():
    os.makedirs(HERE, exist_ok=True)
    for name, (blob, expect) in sorted(CASES.items()):
        with open(os.path.join(HERE, name + ".bin"), "wb") as f:
            f.write(blob)
        with open(os.path.join(HERE, name + ".bin.expect"), "w") as f:
            f.write(expect + "\n")
    print("wrote %d cases to %s" % (len(CASES), HERE))


if __name__ == "__main__":
    main()
