#!/usr/bin/env python3
"""A stand-in for AwesomeAPI's quote service, for clouds with no way out
(tests, the sandbox): `GET /json/last/USD-BRL,EUR-BRL[?token=KEY]` answers in
AwesomeAPI's JSON shape (a pair per key, numbers as strings).

    awesomeapi-standin.py --listen 172.16.0.1:8000 [--key KEY]

Point the deploy at it with -e awesome_api_url=http://172.16.0.1:8000.
"""
import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RATES = {"USD-BRL": ("USD", "Dólar Americano/Real Brasileiro", 5.4321),
         "EUR-BRL": ("EUR", "Euro/Real Brasileiro", 6.1234)}


class Handler(BaseHTTPRequestHandler):
    key = None

    def answer(self, status, body):
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if not url.path.startswith("/json/last/"):
            return self.answer(404, {"status": 404, "code": "NotFound", "message": "not found"})
        if self.key is not None and parse_qs(url.query).get("token", [""])[0] != self.key:
            return self.answer(401, {"status": 401, "code": "Unauthorized", "message": "invalid token"})
        now = int(time.time())
        out = {}
        for pair in url.path[len("/json/last/"):].split(","):
            if pair not in RATES:
                return self.answer(404, {"status": 404, "code": "CoinNotExists", "message": f"moeda nao encontrada {pair}"})
            code, name, base = RATES[pair]
            bid = base + (now % 60) / 10000
            out[pair.replace("-", "")] = {
                "code": code, "codein": "BRL", "name": name,
                "high": f"{base + 0.05:.4f}", "low": f"{base - 0.05:.4f}",
                "varBid": "0.0012", "pctChange": "0.02",
                "bid": f"{bid:.4f}", "ask": f"{bid + 0.0006:.4f}",
                "timestamp": str(now),
                "create_date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)),
            }
        self.answer(200, out)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:8000", help="ADDRESS:PORT")
    p.add_argument("--key", help="the token callers must send")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    Handler.key = a.key
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
