"""RFC 6455 strictness of the WebSocket face (issue 10, item 15), with raw frames over
TLS: an unmasked client frame fails the connection with 1002 (patches/lws/0220); a
close frame with an invalid status code or a 1-byte payload is answered with 1002
(patches/lws/0221); valid close codes are echoed."""
import asyncio
import struct

import attack  # noqa: F401  (puts tests/integration, the harness, on the path)
from harness import GatewayTestCase, RawWS, run_tests, ws_frame


def unmasked(opcode, payload):
    return bytes([0x80 | opcode, len(payload)]) + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class WSStrictTest(GatewayTestCase):
    def close_answer(self, data, answered):
        """Sends data on a fresh connection; returns (code or None, payload) of the
        gateway's close frame. answered: the frame is a whole close frame, so our close
        answer completes the handshake and the gateway must then end the connection
        (after a failed frame it may wait for its close timeout instead)."""
        ws = RawWS(self.gw)
        try:
            ws.sock.sendall(data)
            while True:
                try:
                    op, payload = ws.frame(timeout=5)
                except EOFError:
                    self.fail(f"{data[:20]!r}: the connection ended without a close frame")
                if op == 0x8:
                    break
                if op == 0x9:
                    continue
                # anything else (an answer to the frame) means it was accepted
                self.fail(f"{data[:20]!r}: got opcode {op:#x} {payload[:80]!r} instead of"
                          " a close frame")
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            if not answered:
                return code, payload
            ws.sock.sendall(ws_frame(payload[:2], opcode=0x8))
            try:
                while True:
                    ws.frame(timeout=5)
            except EOFError:
                pass
            return code, payload
        finally:
            ws.close()

    def check(self, cases, answered):
        for name, data, want in cases:
            with self.subTest(case=name):
                code, payload = self.close_answer(data, answered)
                self.assertEqual(code, want, f"{name}: close payload {payload!r}")

    async def test_unmasked_client_frames_fail_1002(self):
        """RFC 6455 5.1: the server MUST close on an unmasked frame (7.4.1: 1002)."""
        await asyncio.to_thread(self.check, [
            ("text", unmasked(0x1, b'{"type":"join","room":"t:unmasked"}'), 1002),
            ("ping", unmasked(0x9, b"hi"), 1002),
            ("close", unmasked(0x8, close_payload(1000)), 1002),
        ], False)

    async def test_close_codes(self):
        """7.4.2: codes below 1000, 1004-1006, 1015, 1016-2999 and 5000 and up are
        invalid: answered with 1002; 5.5.1: a 1-byte close payload is malformed: 1002.
        Valid codes come back as sent."""
        await asyncio.to_thread(self.check, [
            ("5000", ws_frame(close_payload(5000, b"bye"), opcode=0x8), 1002),
            ("65535", ws_frame(close_payload(65535), opcode=0x8), 1002),
            ("1-byte payload", ws_frame(b"\x03", opcode=0x8), 1002),
            ("999", ws_frame(close_payload(999), opcode=0x8), 1002),
            ("1005", ws_frame(close_payload(1005), opcode=0x8), 1002),
            ("2999", ws_frame(close_payload(2999), opcode=0x8), 1002),
            ("1000", ws_frame(close_payload(1000), opcode=0x8), 1000),
            ("1001", ws_frame(close_payload(1001, b"going"), opcode=0x8), 1001),
            ("4999", ws_frame(close_payload(4999), opcode=0x8), 4999),
            ("3000", ws_frame(close_payload(3000), opcode=0x8), 3000),
            ("empty", ws_frame(b"", opcode=0x8), None),
        ], True)

    async def test_masked_frames_still_work(self):
        """The ordinary, masked, path is unchanged."""
        c = await self.ws()
        await c.join("t:masked")
        self.assertEqual(await c.publish("t:masked", {"ok": 1}), 1)


if __name__ == "__main__":
    run_tests()
