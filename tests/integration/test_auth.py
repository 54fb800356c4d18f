"""Authentication and permissions (docs/PROTOCOL.md "Authentication", CONFIG.md auth and
rooms[] policies): tokens made by independent implementations (Debian python3-jwt,
npm jsonwebtoken) with every kind of key the gateway takes, the refusals a verifier
owes, and the permission matrix over WebSocket, SSE (HTTP/1.1 and HTTP/2) and the HTTP
API; a token that expires in the middle of a stream, and its refresh."""
import asyncio
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time

import jwt
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness import (DEFAULT_ROOMS, GatewayTestCase, expect_stream_event, log_secret,
                     node_ready, raw_tls, run_tests)

ISS, AUD = "https://issuer.test", "roomgate-test"
API_KEY = log_secret("backend-" + os.urandom(16).hex())
KEYDIR = tempfile.mkdtemp(prefix="roomgate-auth-")
# printable: the file gets a final newline that the gateway cuts, as `echo` would write it
# (a random byte string could end in '\r' and lose it too)
HS_SECRET = base64.urlsafe_b64encode(os.urandom(36))


def _pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64u(n, size=None):
    raw = n.to_bytes(size or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_JWKS = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC256 = ec.generate_private_key(ec.SECP256R1())
ED = ed25519.Ed25519PrivateKey.generate()
OTHER_ED = ed25519.Ed25519PrivateKey.generate()  # a key the gateway does not know


def _write(name, data, mode="wb"):
    path = os.path.join(KEYDIR, name)
    with open(path, mode) as f:
        f.write(data)
    return path


_pub = RSA_JWKS.public_key().public_numbers()
KEYS = [
    {"secret_file": _write("hs.secret", HS_SECRET + b"\n"), "kid": "hs"},
    {"file": _write("rs.pem", _pem_public(RSA)), "kid": "rs"},
    {"file": _write("es.pem", _pem_public(EC256)), "kid": "es"},
    {"file": _write("ed.pem", _pem_public(ED)), "kid": "ed"},
    {"file": _write("keys.jwks", json.dumps({"keys": [
        {"kty": "RSA", "kid": "jw", "alg": "PS256", "n": _b64u(_pub.n),
         "e": _b64u(_pub.e)}]}), "w")},
]
API_KEYS_FILE = _write("api-keys.sha256", (
    "# the backends' keys\n"
    f"{hashlib.sha256(API_KEY.encode()).hexdigest()}  test backend\n"), "w")

ROOMS = DEFAULT_ROOMS + [
    {"name": "members", "subscribe": "authenticated", "publish": "authenticated"},
    {"name": "vip", "subscribe": "claim", "publish": "claim"},
    {"name": "secret", "subscribe": "server", "publish": "server"},
    {"name": "pres", "presence": True, "subscribe": "authenticated"},
    {"pattern": "user:*", "subscribe": "authenticated", "publish": "server", "bind": "sub"},
    {"pattern": "pm:*", "subscribe": "authenticated", "publish": "authenticated",
     "bind": "members"},
]


def claims(sub="alice", ttl=600, **extra):
    now = int(time.time())
    out = {"sub": sub, "iat": now, "exp": now + ttl, "iss": ISS, "aud": AUD}
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def token(kind="ed", **kw):
    """A token from python3-jwt, signed with one of the gateway's keys (never to be
    logged)."""
    return log_secret(_token(kind, **kw))


def _token(kind, **kw):
    body = claims(**kw)
    if kind == "hs":
        return jwt.encode(body, HS_SECRET, algorithm="HS256", headers={"kid": "hs"})
    if kind == "rs":
        return jwt.encode(body, RSA, algorithm="RS256", headers={"kid": "rs"})
    if kind == "es":
        return jwt.encode(body, EC256, algorithm="ES256", headers={"kid": "es"})
    if kind == "ps":
        return jwt.encode(body, RSA_JWKS, algorithm="PS256", headers={"kid": "jw"})
    if kind == "other":
        return jwt.encode(body, OTHER_ED, algorithm="EdDSA", headers={"kid": "ed"})
    return jwt.encode(body, ED, algorithm="EdDSA", headers={"kid": "ed"})


def b64json(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def bearer(tok):
    return [f"Authorization: Bearer {tok}"]


CONFIG = {"auth": {"keys": KEYS, "issuer": ISS, "audience": AUD, "leeway_seconds": 0,
                   "max_token_bytes": 3000,
                   "expiry_grace_seconds": 2, "api_keys_file": API_KEYS_FILE},
          "rooms": ROOMS}


class TokensTest(GatewayTestCase):
    """What the verifier accepts and refuses, seen through GET /rooms/members/messages
    (a room for any valid token)."""
    CONFIG = CONFIG

    async def get(self, tok, http2=False):
        return await self.ahttp("GET", "/rooms/members/messages", headers=bearer(tok),
                                http2=http2)

    async def test_every_kind_of_key(self):
        """HS256 (secret file), RS256, ES256, EdDSA (PEM) and PS256 (JWKS), from
        python3-jwt, over HTTP/1.1 and HTTP/2."""
        for kind in ("hs", "rs", "es", "ed", "ps"):
            for h2 in (False, True):
                r = await self.get(token(kind), http2=h2)
                self.assertEqual(r.status, 200, f"{kind} h2={h2}: {r}")
        # the API key is a backend: it reads the server-only room
        r = await self.ahttp("GET", "/rooms/secret/messages", headers=bearer(API_KEY))
        self.assertEqual(r.status, 200, r)

    async def test_without_credentials(self):
        r = await self.ahttp("GET", "/rooms/members/messages")
        self.assertError(r, 401, "unauthorized")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        r = await self.ahttp("GET", "/rooms/lobby/messages")
        self.assertEqual(r.status, 200, r)

    async def test_refused(self):
        good = token()
        h, p, s = good.split(".")
        forged = f"{h}.{b64json(claims(sub='mallory'))}.{s}"
        now = int(time.time())
        rsa_pem = _pem_public(RSA)
        cases = {
            "a signature of another key": token("other"),
            "a forged payload": forged,
            "alg none": f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(claims())}.",
            "alg none, signature kept": f"{b64json({'alg': 'none'})}.{p}.{s}",
            # algorithm confusion: the RSA public key used as an HMAC secret
            "RSA public key as HS256 secret": _hmac_token(rsa_pem, "rs"),
            "the wrong key type (ES256 header, RSA key id)": _relabel(token("rs"), "ES256"),
            "expired": token(ttl=-5),
            "not yet valid": token(nbf=now + 600),
            "issued in the future": token(iat=now + 600),
            "wrong audience": token(aud="someone-else"),
            "wrong issuer": token(iss="https://evil.test"),
            "truncated": good[:len(good) // 2],
            "no signature part": f"{h}.{p}",
            "badly encoded": f"{h}.{p}!.{s}",
            "not a token": "x.y.z",
            "an unknown API key": "backend-0000",
        }
        for what, tok in cases.items():
            r = await self.get(tok)
            self.assertError(r, 401, "unauthorized")
            self.assertNotIn(tok, self.gw.stderr(), f"{what}: a token in the log")

    async def test_huge_token(self):
        """Past auth.max_token_bytes (here 3000): refused unread, in a header over
        HTTP/1.1 and HTTP/2 and in an `auth` message; past what a request's headers may
        hold (4 KB), 431; 1 MB in an `auth` message is past limits.max_message_bytes."""
        big = token(pad="x" * 2500)
        self.assertGreater(len(big), 3000)
        for h2 in (False, True):
            r = await self.get(big, http2=h2)
            self.assertError(r, 401, "unauthorized")
            self.assertIn("too long", r.json()["error"]["message"])
        c = await self.ws()
        ans = await c.request("auth", token=big)
        self.assertEqual((ans.get("code"), ans.get("message")), ("unauthorized", "too long"))
        r = await self.get(token(pad="x" * 9000))
        self.assertEqual(r.status, 431, r)
        # 1 MB (past what a command line takes: sent raw); HTTP/2 header blocks past 4 KB
        # end the connection, which attack_test_h2 checks
        head = await asyncio.to_thread(self.raw_request, (
            "GET /rooms/members/messages HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {'a' * (1 << 20)}\r\n\r\n").encode())
        self.assertRegex(head[:40], rb"^HTTP/1\.[01] 431 ", head[:100])
        await c.send({"type": "auth", "token": "a" * (1 << 20)})
        self.assertEqual((await c.answer()).get("code"), "too_large")
        await c.ping()
        self.assertTrue(self.gw.alive())

    def raw_request(self, data):
        """Sends data on a TLS connection; what came back until the gateway closed it."""
        s = raw_tls(self.gw)
        out = b""
        try:
            s.sendall(data)
        except OSError:
            pass  # the gateway may answer and close before it has read everything
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        s.close()
        return out

    async def test_bad_authorization_header(self):
        r = await self.ahttp("GET", "/rooms/members/messages",
                             headers=[f"Authorization: Basic {API_KEY}"])
        self.assertError(r, 401, "unauthorized")

    async def test_npm_jsonwebtoken(self):
        """Tokens from another implementation: npm jsonwebtoken, HS256 and RS256."""
        ok, why = node_ready("jsonwebtoken")
        self.assertTrue(ok, f"npm jsonwebtoken: {why}")
        script = """
import jwt from 'jsonwebtoken';
const [secretHex, rsaPem, iss, aud] = process.argv.slice(1); // -e: no script path
const o = {issuer: iss, audience: aud, expiresIn: 600, subject: 'carol'};
console.log(jwt.sign({}, Buffer.from(secretHex, 'hex'), {...o, algorithm: 'HS256', keyid: 'hs'}));
console.log(jwt.sign({name: 'Carol'}, rsaPem, {...o, algorithm: 'RS256', keyid: 'rs'}));
"""
        rsa_priv = RSA.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        node_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
        out = subprocess.run(["node", "--input-type=module", "-e", script, HS_SECRET.hex(),
                              rsa_priv, ISS, AUD], cwd=node_dir, capture_output=True,
                             text=True, timeout=60, check=True).stdout.split()
        self.assertEqual(len(out), 2, out)
        for tok in out:
            r = await self.get(tok)
            self.assertEqual(r.status, 200, r)


def _hmac_token(secret, kid):
    import hmac
    head = b64json({"alg": "HS256", "typ": "JWT", "kid": kid})
    body = b64json(claims())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def _relabel(tok, alg):
    h, p, s = tok.split(".")
    head = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    head["alg"] = alg
    return f"{b64json(head)}.{p}.{s}"


# who: the credentials of each caller
WHO = {
    "anonymous": None,
    "alice": lambda: token(sub="alice"),
    "bob": lambda: token(sub="bob", kind="rs"),
    "alice+vip": lambda: token(sub="alice", roomgate={"rooms": {"vip": ["subscribe"]}}),
    "admin": lambda: token(sub="ops", roomgate={"admin": True}),
    "apikey": lambda: API_KEY,
}

# (room, who) -> may subscribe
SUBSCRIBE = {
    "lobby": {"anonymous", "alice", "bob", "alice+vip", "admin", "apikey"},
    "members": {"alice", "bob", "alice+vip", "admin", "apikey"},
    "vip": {"alice+vip", "admin", "apikey"},
    "secret": {"admin", "apikey"},
    "user:alice": {"alice", "alice+vip", "admin", "apikey"},
    "pm:alice:bob": {"alice", "bob", "alice+vip", "admin", "apikey"},
    "pm:bob:carol": {"bob", "admin", "apikey"},
}
# (room, who) -> may publish over the HTTP API
PUBLISH = {
    "lobby": SUBSCRIBE["lobby"],
    "news": {"admin", "apikey"},
    "members": SUBSCRIBE["members"],
    "vip": {"admin", "apikey"},  # the vip grant is subscribe only
    "user:alice": {"admin", "apikey"},
    "pm:alice:bob": SUBSCRIBE["pm:alice:bob"],
}


def expected_error(who):
    return (401, "unauthorized") if who == "anonymous" else (403, "forbidden")


class PermissionsTest(GatewayTestCase):
    CONFIG = CONFIG

    def creds(self, who):
        return WHO[who]() if WHO[who] else None

    async def test_http_api_matrix(self):
        for room, allowed in PUBLISH.items():
            for who in WHO:
                cred = self.creds(who)
                r = await self.ahttp("POST", f"/rooms/{room}/messages",
                                     body=json.dumps({"by": who}),
                                     headers=bearer(cred) if cred else ())
                if who in allowed:
                    self.assertIn(r.status, (200, 201), f"{who} -> {room}: {r}")
                else:
                    self.assertError(r, *expected_error(who))
        for room, allowed in SUBSCRIBE.items():
            for who in WHO:
                cred = self.creds(who)
                r = await self.ahttp("GET", f"/rooms/{room}/messages",
                                     headers=bearer(cred) if cred else ())
                if who in allowed:
                    self.assertEqual(r.status, 200, f"{who} reads {room}: {r}")
                else:
                    self.assertError(r, *expected_error(who))
        # a refused publish to a pattern room made no room
        r = await self.ahttp("POST", "/rooms/pm:eve:mallory/messages", body="1",
                             headers=bearer(token(sub="alice")))
        self.assertError(r, 403, "forbidden")
        r = await self.ahttp("GET", "/rooms", headers=bearer(API_KEY))
        self.assertIn("lobby", [x["name"] for x in r.json()["rooms"]])
        self.assertNotIn("pm:eve:mallory", [x["name"] for x in r.json()["rooms"]])

    async def test_rooms_list_is_filtered(self):
        for who in ("alice", "bob"):
            r = await self.ahttp("POST", f"/rooms/pm:{who}:zed/messages", body="1",
                                 headers=bearer(token(sub=who)))
            self.assertEqual(r.status, 201, r)
        names = {}
        for who in WHO:
            cred = self.creds(who)
            r = await self.ahttp("GET", "/rooms", headers=bearer(cred) if cred else ())
            self.assertEqual(r.status, 200, r)
            names[who] = {x["name"] for x in r.json()["rooms"]}
        self.assertNotIn("pm:alice:zed", names["anonymous"])
        self.assertNotIn("secret", names["anonymous"])
        self.assertNotIn("members", names["anonymous"])
        self.assertIn("lobby", names["anonymous"])
        self.assertIn("pm:alice:zed", names["alice"])
        self.assertNotIn("pm:bob:zed", names["alice"])
        self.assertIn("pm:bob:zed", names["bob"])
        self.assertTrue({"secret", "pm:alice:zed", "pm:bob:zed"} <= names["apikey"])

    async def ws_as(self, who, how):
        """A WebSocket as who: credentials in the Authorization header, the token query
        argument, or an `auth` message."""
        cred = self.creds(who)
        if cred is None or how == "message":
            c = await self.ws()
            if cred is not None:
                ans = await c.request("auth", token=cred)
                self.assertEqual(ans.get("type"), "authenticated", ans)
            return c
        if how == "header":
            return await self.ws(extra_headers={"Authorization": f"Bearer {cred}"})
        c = await WSQuery.connect(self.gw, cred)
        self._clients.append(c)
        return c

    async def test_ws_matrix(self):
        for how in ("header", "query", "message"):
            for who in WHO:
                c = await self.ws_as(who, how)
                for room, allowed in SUBSCRIBE.items():
                    ans = await c.request("join", room=room)
                    if who in allowed:
                        self.assertEqual(ans.get("type"), "joined", f"{how} {who} {room}")
                    else:
                        self.assertEqual(ans.get("code"), expected_error(who)[1],
                                         f"{how} {who} {room}: {ans}")
                for room, allowed in PUBLISH.items():
                    if room not in SUBSCRIBE or who not in SUBSCRIBE[room]:
                        continue
                    ans = await c.request("publish", room=room, data=1)
                    want = "ack" if who in allowed else "error"
                    self.assertEqual(ans.get("type"), want, f"{how} {who} {room}: {ans}")
                await c.close()

    async def test_sse_matrix(self):
        for h2 in (False, True):
            for who in WHO:
                cred = self.creds(who)
                for room, allowed in SUBSCRIBE.items():
                    for how in ("header", "query"):
                        if cred is None and how == "query":
                            continue
                        q, hdrs = f"room={room}", ()
                        if cred is not None and how == "query":
                            q += f"&token={cred}"
                        elif cred is not None:
                            hdrs = bearer(cred)
                        s = self.sse(q, http2=h2, headers=hdrs)
                        if who in allowed:
                            expect_stream_event(s)
                        else:
                            st = expected_error(who)[0]
                            s.wait_started()
                            self.assertIn(f" {st}", s.status_line(), f"{who} {room} {how}")
                        s.close_sync()

    async def test_every_way_into_a_room_is_judged(self):
        """Besides the URL's rooms, an SSE stream joins rooms by its Last-Event-ID and by
        POST /streams/{id}/rooms: each judged by the stream's own credentials."""
        alice = token(sub="alice")
        s = self.sse(f"room=members&token={alice}")
        sid = expect_stream_event(s)
        for room, code in (("secret", 403), ("pm:bob:carol", 403), ("vip", 403),
                           ("pm:alice:bob", 200)):
            # the stream's id is all a steering request needs: its credentials are the
            # stream's, whatever the request carries
            r = await self.ahttp("POST", f"/streams/{sid}/rooms",
                                 body=json.dumps({"join": [room]}), headers=bearer(API_KEY))
            if code == 200:
                self.assertEqual(r.status, 200, r)
            else:
                self.assertError(r, 403, "forbidden")
        epoch = s.stream["epoch"]
        for room in ("secret", "pm:bob:carol"):
            r = await self.ahttp("GET", f"/events?room=members&token={alice}",
                                 headers=[f"Last-Event-ID: {epoch}/members=0,{room}=0"])
            self.assertError(r, 403, "forbidden")
        r = await self.ahttp("GET", "/events?room=members",
                             headers=[f"Last-Event-ID: {epoch}/members=0"])
        self.assertError(r, 401, "unauthorized")

    async def test_presence_names_are_the_tokens(self):
        a = await self.ws(extra_headers={"Authorization": "Bearer " + token(
            sub="alice", name="Alice A.")})
        ans = await a.request("join", room="pres", name="Somebody Else")
        self.assertEqual(ans.get("type"), "joined", ans)
        b = await self.ws(extra_headers={"Authorization": "Bearer " + token(sub="bob")})
        await b.join("pres")
        ev = await a.answer()
        self.assertEqual((ev.get("event"), ev.get("user"), ev.get("sub")),
                         ("join", "bob", "bob"), ev)
        ans = await b.request("presence", room="pres")
        self.assertEqual(sorted(ans.get("users")), ["Alice A.", "bob"], ans)
        r = await self.ahttp("GET", "/rooms/pres/presence")
        self.assertError(r, 401, "unauthorized")

    async def test_refresh_and_expiry(self):
        """A token expires: the client is told `token_expired` and closed with 4001
        after the grace period (2 s) unless it refreshes with `auth`."""
        c = await self.ws(extra_headers={"Authorization": "Bearer " + token(ttl=2)})
        await c.join("members")
        d = await self.ws()
        ans = await d.request("auth", token=token(ttl=2))
        self.assertEqual((ans.get("type"), ans.get("sub")), ("authenticated", "alice"), ans)
        await d.join("members")
        # d refreshes before expiry; another user's token is refused
        ans = await d.request("auth", token=token(sub="bob"))
        self.assertEqual(ans.get("code"), "forbidden", ans)
        # a token that would not let it into a room it is in: refused, changes nothing
        e = await self.ws()
        ans = await e.request("auth", token=token(roomgate={"rooms": {"vip": ["subscribe"]}}))
        await e.join("vip")
        ans = await e.request("auth", token=token())
        self.assertEqual(ans.get("code"), "forbidden", ans)
        self.assertIn("vip", ans.get("message"))
        ans = await d.request("auth", token=token(ttl=60))
        self.assertEqual(ans.get("type"), "authenticated", ans)
        t0 = time.monotonic()
        err = await c.answer(timeout=6)
        self.assertEqual(err.get("code"), "token_expired", err)
        # still subscribed in the grace period; then closed
        with self.assertRaises(websockets.ConnectionClosed) as cm:
            while True:
                await asyncio.wait_for(c.ws.recv(), 6)
        self.assertEqual(cm.exception.code, 4001)
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        # d lives on and still receives the room
        await asyncio.sleep(1)
        seq = (await self.ahttp("POST", "/rooms/members/messages", body='"still"',
                                headers=bearer(API_KEY))).json()["seq"]
        m = await d.message()
        self.assertEqual(m.get("seq"), seq)
        await d.assert_quiet()

    async def test_a_bad_token_at_the_upgrade_closes_4001(self):
        with self.assertRaises(websockets.ConnectionClosed) as cm:
            c = await self.ws(extra_headers={"Authorization": "Bearer " + token(ttl=-10)})
            ans = await c.answer()
            self.assertEqual(ans.get("code"), "unauthorized", ans)
            await asyncio.wait_for(c.ws.recv(), 5)
        self.assertEqual(cm.exception.code, 4001)

    async def test_sse_stream_expires(self):
        s = self.sse(f"room=members&token={token(ttl=2)}")
        expect_stream_event(s)
        ev = s.next_event(timeout=8)
        self.assertEqual(ev["event"], "expired", ev)
        self.assertEqual(json.loads(ev["data"]).get("code"), "token_expired")
        deadline = time.monotonic() + 5
        while s.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(s.alive(), "the stream did not end")


class WSQuery:
    """A WebSocket whose token is in the URL (?token=), as a browser's must be."""

    @classmethod
    async def connect(cls, gw, tok):
        from harness import WSClient, SUBPROTOCOL, client_ssl
        ws = await websockets.connect(f"{gw.ws_url}?token={tok}", ssl=client_ssl(),
                                      subprotocols=[SUBPROTOCOL], open_timeout=5,
                                      close_timeout=2, ping_interval=None)
        return WSClient(ws)


class NoAuthTest(GatewayTestCase):
    """Without an auth section: credentials are refused (a misconfigured backend
    hears of it), and the HTTP API is a backend from loopback addresses only."""
    CONFIG = {}

    async def test_credentials_refused(self):
        r = await self.ahttp("GET", "/rooms/lobby/messages", headers=bearer("anything"))
        self.assertError(r, 401, "unauthorized")
        c = await self.ws()
        ans = await c.request("auth", token="a.b.c")
        self.assertEqual(ans.get("code"), "unauthorized", ans)

    async def test_loopback_is_a_backend(self):
        r = await self.ahttp("POST", "/rooms/news/messages", body="1")
        self.assertEqual(r.status, 201, r)
        c = await self.ws()
        await c.join("news")
        ans = await c.request("publish", room="news", data=1)
        self.assertEqual(ans.get("code"), "forbidden", ans)


if __name__ == "__main__":
    run_tests()
