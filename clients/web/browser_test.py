"""Drives passkey-demo.html in headless Chromium with a virtual
authenticator (WebDriver's WebAuthn extension, through ChromeDriver):
password login, passkey registration, sign-in with the passkey alone, over
gRPC-Web against a running gardien. Standard library only.

Usage: browser_test.py --page URL --server URL --login L --password P
"""

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return json.loads(response.read() or b"{}").get("value")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read().decode()[:500]}")

    def start(self, binary):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]},
        }}}
        self.session = self.request("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return f"/session/{self.session}{path}"

    def run(self, script, *args):
        """Runs an async script: the page's promise, resolved or failed."""
        wrapped = ("const done = arguments[arguments.length - 1];"
                   f"(async () => {{ {script} }})().then("
                   "(value) => done({ok: true, value}), (error) => done({ok: false, error: String(error)}));")
        result = self.request("POST", self.s("/execute/async"), {"script": wrapped, "args": list(args)})
        if not result["ok"]:
            raise RuntimeError(result["error"])
        return result["value"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--page", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    port = free_port()
    driver_process = subprocess.Popen([args.chromedriver, f"--port={port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = WebDriver(port)
    try:
        for _ in range(100):
            try:
                driver.request("GET", "/status")
                break
            except Exception:
                time.sleep(0.1)
        driver.start(args.chromium)
        driver.request("POST", driver.s("/timeouts"), {"script": 30000})
        authenticator = driver.request("POST", driver.s("/webauthn/authenticator"), {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
        })
        driver.request("POST", driver.s("/url"), {"url": f"{args.page}?server={args.server}"})

        driver.run("return await window.demo.logIn(arguments[0], arguments[1]);", args.login, args.password)
        print("browser: logged in with the password")
        added = driver.run("return await window.demo.addPasskey('Headless Chromium');")
        assert added["recoveryCodes"] == 10, added
        credentials = driver.request("GET", driver.s(f"/webauthn/authenticator/{authenticator}/credentials"))
        assert len(credentials) == 1, credentials
        assert credentials[0]["isResidentCredential"], "the passkey is not discoverable"
        print("browser: passkey registered (discoverable, 10 recovery codes)")

        # A new page: nothing of the password session remains in it.
        driver.request("POST", driver.s("/url"), {"url": f"{args.page}?server={args.server}"})
        signed_in = driver.run("return await window.demo.signIn();")
        assert signed_in["sessionId"] and signed_in["accountId"], signed_in
        credentials = driver.request("GET", driver.s(f"/webauthn/authenticator/{authenticator}/credentials"))
        assert credentials[0]["signCount"] >= 1, credentials
        print(f"browser: signed in with the passkey alone (session {signed_in['sessionId']})")

        # The password alone no longer opens a session: 2FA is on.
        try:
            driver.run("return await window.demo.logIn(arguments[0], arguments[1]);", args.login, args.password)
            raise AssertionError("the password alone opened a session")
        except RuntimeError as error:
            assert "second factor" in str(error), error
        print("browser: the password alone now meets a second-factor challenge")
        print("browser: passed")
    finally:
        if driver.session:
            try:
                driver.request("DELETE", driver.s(""))
            except Exception:
                pass
        driver_process.terminate()
        driver_process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
