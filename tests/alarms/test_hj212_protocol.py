"""HJ 212-2017 codec conformance: frames written from the standard's text (Appendix A and C) with
CRCs computed by the Appendix A steps (door_firmware_bridge/sensors/hj212_station.appendix_a_crc,
written apart from the codec) and written down here, plus bad frames and a fuzz test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from door_firmware_bridge.sensors.hj212_station import appendix_a_crc
from idsvc.alarms.hj212 import protocol
from idsvc.alarms.hj212.protocol import Deframer, FrameError

MN = "010000A8900016F000169DC0"
# (data segment, its CRC by Appendix A). The first is Appendix A's own example: the frame in the
# standard carries 1C80, its text says "1C08" (a misprint; 1C08 is not the CRC of anything here).
VECTORS = [
    (f"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN={MN};Flag=5;CP=&&RtdInterval=30&&", "1C80"),
    (f"QN=20160801085857223;ST=32;CN=2011;PW=123456;MN={MN};Flag=5;CP=&&DataTime=20160801085857;w01001-Rtd=7.1,w01001-Flag=N;"
     "w01018-SampleTime=20160801070000,w01018-Rtd=2.2,w01018-Flag=N,w01018-EFlag=A01&&", "6E80"),  # Table C.14
    (f"QN=20160801085857223;ST=91;CN=9014;PW=123456;MN={MN};Flag=4;CP=&&&&", "3240"),  # its data answer
    (f"QN=20160801085000001;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&DataTime=20160801084000;w00000-Cou=10.5,w00000-Min=16.4,"
     "w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N;w01018-Cou=10.5,"
     "w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&", "6180"),  # Table C.16
    (f"QN=20160801090000001;ST=32;CN=2061;PW=123456;MN={MN};Flag=5;CP=&&DataTime=20160801080000;w00000-Cou=63.0,w00000-Min=16.4,"
     "w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N;w01018-Cou=63.0,"
     "w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&", "B7C1"),  # Table C.17
    (f"QN=20160802000000001;ST=32;CN=2031;PW=123456;MN={MN};Flag=5;CP=&&DataTime=20160801000000;w00000-Cou=1512.0,w00000-Min=16.4,"
     "w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N;w01018-Cou=2142.0,"
     "w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&", "F781"),  # Table C.18
    (f"QN=20160801085857534;ST=32;CN=2061;PW=123456;MN={MN};Flag=7;PNUM=2;PNO=1;CP=&&DataTime=20160801080000;w00000-Cou=63.0,"
     "w00000-Min=16.4,w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N&&", "D941"),  # C.50
    (f"QN=20160801085857535;ST=32;CN=2061;PW=123456;MN={MN};Flag=7;PNUM=2;PNO=2;CP=&&DataTime=20160801080000;w01018-Cou=63.0,"
     "w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&", "E2C1"),
    (f"QN=20160801085857223;ST=32;CN=1013;PW=123456;MN={MN};Flag=5;CP=&&PolId=w01018&&", "CAC1"),  # Table C.4
]


def _frame(segment: str, crc: str) -> bytes:
    return f"##{len(segment.encode()):04d}{segment}{crc}\r\n".encode()


@pytest.mark.parametrize(("segment", "crc"), VECTORS, ids=[v[0].split(";")[2] + ("/" + v[0].split(";")[7] if "PNO" in v[0] else "") for v in VECTORS])
def test_written_vectors_check_and_parse(segment: str, crc: str) -> None:
    assert f"{protocol.crc16(segment.encode()):04X}" == crc == f"{appendix_a_crc(segment.encode()):04X}"
    frame = protocol.parse(_frame(segment, crc))
    assert frame.crc_ok and frame.mn == MN and frame.data_segment == segment.encode()
    assert protocol.encode(segment) == _frame(segment, crc)
    assert protocol.parse(_frame(segment, crc.lower())).crc_ok  # hex is compared as a number: case does not matter


def test_appendix_a_example_is_the_frame_printed_in_the_standard() -> None:
    printed = b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n"
    frame = protocol.parse(printed)
    assert frame.crc_ok and (frame.cn, frame.flag, frame.wants_answer, frame.version, frame.cp) == ("1062", 5, True, 1, "RtdInterval=30")
    assert not protocol.parse(printed.replace(b"1C80", b"1C08")).crc_ok  # the misprint in the text


def test_it_is_not_modbus_crc() -> None:
    segment = VECTORS[0][0].encode()
    assert protocol.modbus_crc16(segment) != protocol.crc16(segment)
    assert protocol.modbus_crc16(b"123456789") == 0x4B37  # CRC-16/MODBUS check value


def test_split_message_fields_and_the_data_area() -> None:
    part = protocol.parse(_frame(*VECTORS[6]))
    assert (part.split, part.wants_answer, part.pnum, part.pno) == (True, True, 2, 1)
    area = protocol.parse_cp(part.cp)
    assert area.fields == {"DataTime": "20160801080000"}
    assert area.pollutants["w00000"] == {"Cou": "63.0", "Min": "16.4", "Avg": "17.5", "Max": "20.1", "Flag": "N"}
    realtime = protocol.parse_cp(protocol.parse(_frame(*VECTORS[1])).cp)
    assert realtime.pollutants["w01018"] == {"SampleTime": "20160801070000", "Rtd": "2.2", "Flag": "N", "EFlag": "A01"}


def test_answers_follow_appendix_c() -> None:
    upload = protocol.parse(_frame(*VECTORS[1]))
    assert protocol.data_answer(upload) == _frame(VECTORS[2][0], VECTORS[2][1])  # Table C.14's 9014, byte for byte
    notice = protocol.parse(_frame(*VECTORS[8]))
    assert protocol.parse(protocol.notice_answer(notice)).cn == "9013"
    refused = protocol.parse(protocol.request_answer(upload, 3))
    assert (refused.cn, refused.st, refused.flag, refused.cp, refused.qn) == ("9011", "91", 4, "QnRtn=3", upload.qn)
    split = protocol.parse(_frame(*VECTORS[7]))
    assert protocol.parse(protocol.data_answer(split)).flag == 4  # the answer is neither split nor wants an answer


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"#0087" + VECTORS[2][0].encode() + b"3240\r\n", "bad_header"),
        (_frame(*VECTORS[2])[:-2] + b"\n\n", "bad_trailer"),
        (b"##00x7" + VECTORS[2][0].encode() + b"3240\r\n", "bad_length"),
        (b"##0088" + VECTORS[2][0].encode() + b"3240\r\n", "bad_length"),
        (_frame(*VECTORS[2]).replace(b"3240\r\n", b"32G0\r\n"), "bad_crc_field"),
        (_frame(f"QN=1;ST=91;CN=9014;PW=1;MN={MN};Flag=4;CP=&&", "0000"), "bad_cp"),
        (_frame("QN=1;ST=91;CN=9014;PW=1;Flag=4;CP=&&&&", "0000"), "missing_field"),
        (_frame(f"QN=1;ST=91;CN=9014;PW=1;MN={MN};Flag=x;CP=&&&&", "0000"), "bad_flag"),
        (_frame(f"QN=1;ST=91;CN=2061;PW=1;MN={MN};Flag=7;CP=&&&&", "0000"), "bad_split"),
        (_frame(f"QN=1;ST=91;CN=2061;PW=1;MN={MN};Flag=7;PNUM=2;PNO=3;CP=&&&&", "0000"), "bad_split"),
        (b"##0004\xff\xfe&&0000\r\n", "bad_encoding"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(raw: bytes, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        protocol.parse(raw)
    assert caught.value.code == code


def test_a_wrong_crc_is_recorded_not_raised() -> None:
    frame = protocol.parse(_frame(VECTORS[1][0], "6E81"))
    assert not frame.crc_ok and frame.crc_sent == 0x6E81


def test_deframer_reassembles_pieces_and_skips_garbage() -> None:
    a, b = _frame(*VECTORS[1]), _frame(*VECTORS[2])
    stream = b"noise" + a + b"\x00\x01##junk" + b + a
    deframer = Deframer()
    frames, errors = [], []
    for i in range(0, len(stream), 7):  # seven bytes per read
        got, errs = deframer.feed(stream[i : i + 7])
        frames += got
        errors += errs
    assert frames == [a, b, a]
    assert {e.code for e in errors} == {"garbage", "bad_length"}
    # A lying length field costs only its own frame: the stream resynchronises on the next ##.
    lying = b"##0010" + VECTORS[2][0].encode() + b"3240\r\n"
    assert Deframer().feed(lying + a)[0] == [a]


def test_long_frames_beyond_the_standard_are_accepted() -> None:
    cp = ";".join(f"a{n:05d}-Rtd={n}.5,a{n:05d}-Flag=N" for n in range(80))
    segment = f"QN=20260101000000000;ST=22;CN=2011;PW=123456;MN={MN};Flag=4;CP=&&DataTime=20260101000000;{cp}&&"
    assert len(segment) > protocol.STANDARD_MAX_DATA
    frame = protocol.parse(protocol.encode(segment))
    assert frame.crc_ok and len(protocol.parse_cp(frame.cp).pollutants) == 80


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes_never_break_the_parser_or_the_deframer(data: bytes) -> None:
    for candidate in (data, b"##" + f"{len(data):04d}".encode() + data + b"0000\r\n"):
        try:
            frame = protocol.parse(candidate)
            protocol.parse_cp(frame.cp)
        except FrameError:
            pass
    frames, _ = Deframer().feed(data)
    assert all(f.startswith(b"##") and f.endswith(b"\r\n") for f in frames)


_text = st.text(alphabet=st.characters(blacklist_characters=";=,&\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    cn=st.sampled_from(["2011", "2051", "2061", "2031", "9014", "1013"]),
    flag=st.integers(0, 255),
    values=st.dictionaries(st.from_regex(r"\A[a-w][0-9]{5}\Z"), st.dictionaries(st.sampled_from(["Rtd", "Avg", "Min", "Max", "Cou", "Flag"]), _text, min_size=1), max_size=6),
    chunk=st.integers(1, 64),
)
def test_fuzz_generated_frames_round_trip_in_any_chunking(cn: str, flag: int, values: dict[str, dict[str, str]], chunk: int) -> None:
    split = "PNUM=3;PNO=2;" if flag & protocol.FLAG_SPLIT else ""
    cp = ";".join(["DataTime=20261201120000"] + [",".join(f"{code}-{k}={v}" for k, v in fields.items()) for code, fields in values.items()])
    raw = protocol.encode(f"QN=20261201120000123;ST=22;CN={cn};PW=pw;MN={MN};Flag={flag};{split}CP=&&{cp}&&")
    deframer = Deframer()
    frames = [f for i in range(0, len(raw), chunk) for f in deframer.feed(raw[i : i + chunk])[0]]
    assert frames == [raw]
    frame = protocol.parse(raw)
    assert frame.crc_ok and (frame.cn, frame.flag) == (cn, flag)
    assert protocol.parse_cp(frame.cp).pollutants == {code: fields for code, fields in values.items()}
