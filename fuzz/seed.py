#!/usr/bin/env python3
"""Builds the fuzzers' seed corpora from the project's fixtures (stdlib only).

Each target reads its input in its own shape (see the doc comment at the top of each file in
fuzz_targets/); the seeds here are real fixtures put into that shape, so the fuzzers start from
what phones, recorders and portals really send.

    python3 fuzz/seed.py            # writes fuzz/seeds/<target>/
"""
import hashlib
import json
import struct
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
OUT = ROOT / "fuzz" / "seeds"


def put(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pcap_payloads(path):
    """UDP payloads of a classic pcap (Ethernet, Linux cooked or raw IPv4 link types)."""
    raw = path.read_bytes()
    magic = raw[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(endian + "I", raw[20:24])[0]
    skip = {1: 14, 113: 16, 276: 20, 101: 0, 228: 0}.get(link)
    if skip is None:
        return []
    out, pos = [], 24
    while pos + 16 <= len(raw):
        incl = struct.unpack(endian + "I", raw[pos + 8:pos + 12])[0]
        frame = raw[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        ip = frame[skip:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        out.append(ip[ihl + 8:])
    return out


def sip():
    messages = sorted(p for p in (FIX / "sip").rglob("*") if p.is_file() and p.suffix in (".txt", ".dat"))
    for p in messages:
        put("sip_message", p.read_bytes())
        put("sip_endpoint", b"\x00" + p.read_bytes())
    # Whole exchanges for the endpoint: an INVITE then each other message in the same call.
    valid = [p.read_bytes() for p in messages if "valid" in p.parts]
    for first in valid[:4]:
        for second in valid:
            put("sip_endpoint", first + b"\x00" + second + b"\x00" + first)


def sdp():
    for p in sorted((FIX / "sdp").glob("*.sdp")):
        put("sdp", p.read_bytes())


def rtp():
    for p in sorted((FIX / "rtp").glob("*.pcap")):
        datagrams = pcap_payloads(p)[:120]
        if datagrams:
            put("rtp_media", b"RTP!".join(datagrams))


def audio():
    hints = {".wav": 0, ".flac": 1, ".ogg": 2, ".mp3": 3}
    for p in sorted((FIX / "formats").iterdir()):
        if p.suffix in hints and p.stat().st_size <= 64 * 1024:
            put("audio_load", bytes([hints[p.suffix]]) + p.read_bytes())


def dtmf():
    wavs = sorted((FIX / "dtmf").rglob("*.wav")) + sorted((FIX / "edge").glob("*.wav"))
    for p in wavs:
        with wave.open(str(p)) as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                continue
            frames = w.readframes(min(w.getnframes(), 16000))  # 2 s at 8 kHz
        put("dtmf_detector", struct.pack("<H", len(frames) % 397) + frames)


def api():
    bodies = [
        {"device": "5401"},
        {"device": "5401", "user": "1001"},
        {"device": "1234"},
        {"device": "5401", "user": "9999"},
        {"device": 5401},
        {"device": "5401", "extra": True},
    ]
    for body in bodies:
        put("api_body", b"\x00" + json.dumps(body).encode())
    put("api_body", b"\x00" + b"[" * 64 + b"]" * 64)
    for route, rest in [(2, b"01HZZZZZZZZZZZZZZZZZZZZZZZ"), (3, b"5401"), (4, b"1001"),
                        (5, b"since=2026-01-01T00:00:00Z&limit=5"), (5, b"limit=-1")]:
        put("api_body", bytes([route]) + rest)


if __name__ == "__main__":
    for make in (sip, sdp, rtp, audio, dtmf, api):
        make()
    for d in sorted(OUT.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
