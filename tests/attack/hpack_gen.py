"""Structure-aware random HPACK header blocks for tests/attack/hpack_fuzz.py."""
import os
import random
import struct

from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

HUFF = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)

# static table (RFC 7541 appendix A) names by index
STATIC_NAMES = [None, ":authority", ":method", ":method", ":path", ":path", ":scheme", ":scheme",
                ":status", ":status", ":status", ":status", ":status", ":status", ":status",
                "accept-charset", "accept-encoding", "accept-language", "accept-ranges", "accept",
                "access-control-allow-origin", "age", "allow", "authorization", "cache-control",
                "content-disposition", "content-encoding", "content-language", "content-length",
                "content-location", "content-range", "content-type", "cookie", "date", "etag",
                "expect", "expires", "from", "host", "if-match", "if-modified-since",
                "if-none-match", "if-range", "if-unmodified-since", "last-modified", "link",
                "location", "max-forwards", "proxy-authenticate", "proxy-authorization", "range",
                "referer", "refresh", "retry-after", "server", "set-cookie",
                "strict-transport-security", "transfer-encoding", "user-agent", "vary", "via",
                "www-authenticate"]
NAME_IDX = {n: i for i, n in enumerate(STATIC_NAMES) if n and i not in (3, 5, 7)}

KNOWN = ["accept", "cookie", "origin", "authorization", "content-length", "content-type",
         "host", "user-agent", "referer", "accept-encoding", "accept-language", "range",
         "if-modified-since", "if-none-match", "transfer-encoding", "upgrade", "connection",
         "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol",
         "sec-websocket-extensions", "x-forwarded-for", "cache-control", "pragma",
         "te", "expect", "x-real-ip", "sec-fetch-mode"]
CUSTOM = ["last-event-id", "idempotency-key", "x-foo", "x-a", "a", "x-custom-header",
          "dnt", "priority", "x-requested-with"]
WEIRD = ["get ", "post ", "options ", "put ", "delete ", "patch ", "head ", "get",
         "accept:", "accept:x", "cookie:a", "cookie:", ":", "::", ":path", ":method",
         ":authority", ":scheme", ":protocol", ":status", ":foo", ":path:", "host:a:b",
         "Accept", "X-Foo", "a\x00b", "a\rb", "a\nb", "\r\n", " ", "a b", "origin ",
         " origin", "\t", "\x7f", "\xff\xfe", "get /x http/1.1", "http/1.1", "/",
         "last-event-id:", "last-event-id:x", "idempotency-key: 1", "content-length:",
         "authorization:bearer x", "a" * 300, "x-" + "b" * 5000, "%", "..", "?", "&",
         "sec-websocket-key:abc", "upgrade:websocket"]
PATHS = ["/healthz", "/events?room=lobby", "/rooms/lobby/messages", "/ws", "/", "/rooms",
         "/rooms/lobby", "/events?room=lobby&last_event_id=1-2", "/index.html", "/sub/",
         "/../secret.html", "/%2e%2e/secret.html", "/healthz?" + "a=b&" * 50, "*", "",
         "healthz", "/events?room=" + "x" * 3000, "/a/./b/../../healthz", "/%00",
         "/events?room=lobby&room=x", "/?&&&&&&", "/" + "%41" * 100]
METHODS = ["GET", "POST", "CONNECT", "OPTIONS", "HEAD", "PUT", "DELETE", "get", "", "G\x00T"]


def varint(value, prefix_bits, first=0, overlong=0):
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes([first | value])
    out = bytearray([first | mask])
    value -= mask
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    if overlong:
        out.append(0x80 | value)
        for _ in range(overlong - 1):
            out.append(0x80)
        out.append(0x00)
    else:
        out.append(value)
    return bytes(out)


class Gen:
    def __init__(self, rng):
        self.r = rng
        self.dyn = 0  # how many entries we believe the server's table has
        self.noempty = bool(os.environ.get("HPACK_FUZZ_NOEMPTY"))  # skip empty values

    # ---------------------------------------------------------------- primitives
    def rstr(self):
        r = self.r
        k = r.random()
        if k < 0.3:
            return r.choice(["x", "1", "lobby", "text/event-stream", "application/json",
                             "*/*", "gzip, deflate", "websocket", "13", "https://localhost",
                             "null", "Bearer abc.def.ghi", "1-1", "0", "-1", "99999999999",
                             "a=b; c=d", "localhost", "localhost:1", "http://evil"])
        if k < 0.5:
            n = r.choice([0, 1, 2, 7, 31, 64, 127, 128, 255, 256, 1000, 2048, 4000, 4095,
                          4096, 4097, 8192, 16000])
            return "".join(r.choice("abcxyz0123456789-_=;,/ ") for _ in range(n))
        if k < 0.65:
            return "".join(chr(r.randrange(256)) for _ in range(r.randrange(1, 40)))
        if k < 0.75:
            return r.choice(["", " ", "  x", "\t1", "x\r\ny: z", "\x00", "a\x00b", "\n",
                             ":", "%", "%zz", "%00", "..", "/..", "a" * 200])
        return "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                       for _ in range(r.randrange(1, 100)))

    def enc_str(self, s, huff=None, lie=0):
        if self.noempty and not s:
            s = "e"
        b = s.encode("latin-1") if isinstance(s, str) else s
        if huff is None:
            huff = self.r.random() < 0.4
        if huff:
            b = HUFF.encode(b)
        n = len(b) + lie
        if n < 0:
            n = 0
        over = 1 if self.r.random() < 0.03 else 0
        return varint(n, 7, 0x80 if huff else 0, over) + b

    def name(self):
        k = self.r.random()
        if k < 0.35:
            return self.r.choice(KNOWN)
        if k < 0.6:
            return self.r.choice(CUSTOM)
        if k < 0.85:
            return self.r.choice(WEIRD)
        return "".join(self.r.choice("abcdefghijklmnopqrstuvwxyz-_:0123456789 .")
                       for _ in range(self.r.randrange(1, 30)))

    def index(self):
        r = self.r
        k = r.random()
        if k < 0.45:
            return r.randrange(1, 62)
        if k < 0.75 and self.dyn:
            return 62 + r.randrange(self.dyn)
        return r.choice([0, 61, 62, 63, 64, 126, 127, 128, 129, 190, 200, 255, 256, 573, 574,
                         1000, 16383, 16384, 65535, 65536, 2 ** 21, 2 ** 28, 2 ** 31 - 1,
                         2 ** 31, 2 ** 32 - 1, 2 ** 32 + 62, 62 + self.dyn,
                         62 + max(0, self.dyn - 1), 62 + 66, 62 + 65])

    # ---------------------------------------------------------------- fields
    def f_indexed(self, idx=None):
        idx = self.index() if idx is None else idx
        return varint(idx, 7, 0x80, 1 if self.r.random() < 0.03 else 0)

    def f_literal(self, name=None, value=None, kind=None, name_idx=None):
        r = self.r
        kind = kind or r.choice(["incr", "incr", "noidx", "never"])
        value = self.rstr() if value is None else value
        first, bits = {"incr": (0x40, 6), "noidx": (0x00, 4), "never": (0x10, 4)}[kind]
        if name_idx is None and name is None and r.random() < 0.5:
            name_idx = self.index()
        if name_idx is not None and name_idx != 0:
            out = varint(name_idx, bits, first, 1 if r.random() < 0.02 else 0)
        else:
            out = bytes([first]) + self.enc_str(self.name() if name is None else name)
        out += self.enc_str(value)
        if kind == "incr":
            self.dyn += 1
        return out

    def f_size(self):
        v = self.r.choice([0, 1, 7, 8, 9, 32, 100, 256, 1000, 4095, 4096, 4097, 8192, 65536,
                           65537, 2 ** 20, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 40])
        if v < 4096:
            self.dyn = min(self.dyn, v // 8)
        return varint(v, 5, 0x20, 1 if self.r.random() < 0.05 else 0)

    def f_garbage(self):
        r = self.r
        k = r.random()
        if k < 0.3:  # truncated varint
            return bytes([r.choice([0xff, 0x7f, 0x3f, 0x1f, 0x0f, 0x4f])]) + bytes(
                [0x80 | r.randrange(128) for _ in range(r.randrange(0, 12))])
        if k < 0.5:  # endless continuation / overlong ints
            return bytes([0xff]) + b"\xff" * r.randrange(4, 40) + b"\x01"
        if k < 0.7:  # literal whose length exceeds the block
            return b"\x00" + varint(r.choice([10, 1000, 2 ** 20, 2 ** 31]), 7) + b"abc"
        return bytes(r.randrange(256) for _ in range(r.randrange(1, 64)))

    def pseudo(self, method=None, path=None):
        r = self.r
        method = method or r.choice(["GET"] * 6 + ["POST"] * 3 + METHODS)
        path = path if path is not None else r.choice(PATHS)
        hs = [(":method", method), (":scheme", r.choice(["https"] * 8 + ["http", "", "x"])),
              (":authority", r.choice(["localhost"] * 5 + ["", "x" * 300, "evil.com"])),
              (":path", path)]
        if method == "CONNECT" or r.random() < 0.05:
            hs.append((":protocol", r.choice(["websocket", "websocket", "x", ""])))
        if r.random() < 0.15:
            r.shuffle(hs)
        if r.random() < 0.1:
            hs.append(r.choice(hs))  # duplicated pseudo header
        if r.random() < 0.05 and hs:
            hs.pop(r.randrange(len(hs)))
        out = []
        for n, v in hs:
            k = r.random()
            if n == ":method" and v in ("GET", "POST") and k < 0.3:
                out.append(bytes([0x82 if v == "GET" else 0x83]))
            elif n == ":scheme" and v == "https" and k < 0.3:
                out.append(b"\x87")
            elif n == ":path" and v == "/" and k < 0.3:
                out.append(b"\x84")
            elif k < 0.7 and n in NAME_IDX:
                out.append(self.f_literal(value=v, name_idx=NAME_IDX[n],
                                          kind=r.choice(["incr", "noidx", "never"])))
            else:
                out.append(self.f_literal(name=n, value=v,
                                          kind=r.choice(["incr", "noidx", "never"])))
        return out

    def field(self):
        k = self.r.random()
        if k < 0.25:
            return self.f_indexed()
        if k < 0.85:
            return self.f_literal()
        if k < 0.92:
            return self.f_size()
        return self.f_garbage()

    def fill_dyn(self, n):
        """n known headers with incremental indexing (to grow the dynamic table)."""
        out = []
        for i in range(n):
            nm = self.r.choice(["accept", "origin", "cookie", "user-agent", "referer",
                                "accept-language", "last-event-id", "x-c%d" % i])
            if nm in NAME_IDX and self.r.random() < 0.5:
                out.append(self.f_literal(value="v%d" % i, name_idx=NAME_IDX[nm], kind="incr"))
            else:
                out.append(self.f_literal(name=nm, value="v%d" % i, kind="incr"))
        return out

    def block(self):
        r = self.r
        fields = []
        if r.random() < 0.1:
            fields.append(self.f_size())
        mode = r.random()
        if mode < 0.08:
            fields += self.fill_dyn(r.randrange(30, 90))
        fields += self.pseudo()
        for _ in range(r.choice([0, 0, 1, 2, 3, 5, 8, 15, 30])):
            f = self.field()
            if r.random() < 0.08:
                f = f * r.choice([2, 5, 20, 50, 95, 100, 200])
            fields.append(f)
        if r.random() < 0.15:  # high dynamic indices
            fields.append(self.f_indexed(r.choice([127, 128, 62 + max(self.dyn - 1, 0),
                                                   62 + 65, 62 + 66, 200])))
        if r.random() < 0.1:
            r.shuffle(fields)
        if r.random() < 0.05:
            fields.append(self.f_garbage())
        return b"".join(fields)
