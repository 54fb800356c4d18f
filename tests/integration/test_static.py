"""Static files from http.web_root; nothing outside it is reachable.

The fixture puts <dir>/web (the web root, with index.html and sub/index.html) next to
<dir>/secret.html and <dir>/outside/page.html, which must never be served."""
import os

from harness import INDEX_HTML, SECRET, GatewayTestCase, run_tests

TRAVERSALS = [
    "/../secret.html",
    "/%2e%2e/secret.html",
    "/%2E%2E/secret.html",
    "/..%2fsecret.html",
    "/..%2Fsecret.html",
    "/.%2e/secret.html",
    "/..\\secret.html",
    "/..%5csecret.html",
    "/sub/../../secret.html",
    "/sub/%2e%2e/%2e%2e/secret.html",
    "/sub/..%2f..%2fsecret.html",
    "/%252e%252e/secret.html",
    "/..;/secret.html",
    "/%00/../secret.html",
    "/../outside/page.html",
    "/%2e%2e%2foutside%2fpage.html",
    "//etc/passwd",
    "/%2e%2e%2f%2e%2e%2fetc/passwd",
    "/../../../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%2fetc%2fpasswd",
    "/sub/" + "../" * 20 + "etc/passwd",
    "/" + "%2e%2e/" * 500,
]


class StaticTest(GatewayTestCase):

    def assertRefused(self, r, path, allow_no_answer=False):
        """Nothing from outside the web root. A 4xx answer, or the web root itself when
        the dot segments were clamped at the root (RFC 3986 remove_dot_segments); with
        allow_no_answer, closing without an answer is tolerated too."""
        self.assertNotIn(SECRET.encode(), r.body, path)
        self.assertNotIn(b"root:x:0:0", r.body, path)
        if r.status == 200:
            self.assertEqual(r.text, INDEX_HTML, f"200 for {path} serves something else")
        elif not (allow_no_answer and r.status == 0):
            self.assertTrue(400 <= r.status < 500, f"{path}: {r}")

    async def test_index_and_files(self):
        for http2 in (False, True):
            for path, body in (("/", INDEX_HTML), ("/index.html", INDEX_HTML),
                               ("/sub/", "sub-index-marker\n"),
                               ("/sub/index.html", "sub-index-marker\n")):
                with self.subTest(http2=http2, path=path):
                    r = await self.ahttp("GET", path, http2=http2)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.text, body)
                    self.assertTrue(r.content_type.startswith("text/html"), r.headers)

    async def test_missing_files_404(self):
        """A path that names no file is answered as the API answers: JSON not_found
        (lws's own page was HTML linking a missing /error.css)."""
        for http2 in (False, True):
            for path in ("/nope.html", "/sub/nope.html", "/nope/", "/index.html/x.html",
                         "/.hidden.html", "/secret.html", "/foo", "/metricsx", "/ws",
                         "/sub", "/roomsx", "/events.js"):
                with self.subTest(http2=http2, path=path):
                    r = await self.ahttp("GET", path, http2=http2)
                    self.assertError(r, 404, "not_found")
        r = await self.ahttp("GET", "/")  # the connection's next request is served
        self.assertEqual((r.status, r.text), (200, INDEX_HTML))

    async def test_other_methods_405(self):
        """Static files take GET and HEAD: any other method on a file or a missing
        path is JSON method_not_allowed with Allow, its body never read."""
        for http2 in (False, True):
            for method, path, body in (("POST", "/index.html", "{}"), ("PUT", "/", "x"),
                                       ("DELETE", "/foo", None), ("PATCH", "/sub/", "x"),
                                       ("OPTIONS", "/index.html", None)):
                with self.subTest(http2=http2, method=method, path=path):
                    r = await self.ahttp(method, path, body, http2=http2)
                    self.assertError(r, 405, "method_not_allowed")
                    self.assertEqual(r.headers.get("allow"), "GET, HEAD", r.headers)
            r = await self.ahttp("HEAD", "/index.html", http2=http2)
            self.assertEqual(r.status, 200, r)

    async def test_traversal_never_leaks(self):
        for http2 in (False, True):
            for path in TRAVERSALS:
                with self.subTest(http2=http2, path=path[:60]):
                    r = await self.ahttp("GET", path, http2=http2, extra=["--path-as-is"])
                    self.assertRefused(r, path)
        self.assertEqual((await self.ahttp("GET", "/")).text, INDEX_HTML)

    async def test_symlink_out_of_web_root_not_served(self):
        """CONFIG.md: http.web_root: "nothing outside it is reachable"."""
        os.symlink(os.path.join(self.gw.dir, "secret.html"),
                   os.path.join(self.gw.web_root, "leak.html"))
        os.symlink(os.path.join(self.gw.dir, "outside"), os.path.join(self.gw.web_root, "out"))
        for path in ("/leak.html", "/out/page.html"):
            with self.subTest(path=path):
                r = await self.ahttp("GET", path)
                self.assertNotIn(SECRET.encode(), r.body, f"{path} follows a symlink out of"
                                                          f" the web root: {r}")
                self.assertEqual(r.status, 404, r)

    async def test_garbage_paths(self):
        """Malformed request targets: refused (or dropped), never served, and the
        gateway keeps serving."""
        for http2 in (False, True):
            for path in ("/" + "a" * 10000, "/%zz", "/%", "/index.html%00.txt", "/%ff%fe",
                         "/index.html?" + "q" * 3000):
                with self.subTest(http2=http2, path=path[:40]):
                    r = await self.ahttp("GET", path, http2=http2, extra=["--path-as-is"])
                    if path.startswith("/index.html?"):
                        self.assertEqual(r.status, 200, r)  # a query does not matter
                    else:
                        self.assertRefused(r, path, allow_no_answer=True)
        r = await self.ahttp("GET", "/", http2=True)
        self.assertEqual((r.status, r.text), (200, INDEX_HTML))


if __name__ == "__main__":
    run_tests()
