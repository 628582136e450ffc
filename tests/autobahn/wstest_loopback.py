# Python 2 wrapper around Autobahn|Testsuite's `wstest`.
#
# wstest binds every listener to 0.0.0.0 and offers no option to change it;
# the tests must only ever listen on loopback, so this wrapper pins Twisted's
# listenTCP/listenSSL to 127.0.0.1 before handing over to wstest's main.
#
# The fuzzingserver also occasionally dropped a connection right after a
# TLS 1.3 handshake (pyOpenSSL 19 / OpenSSL 1.1.1 in this venv), so TLS is
# capped at 1.2 on the server side. That is the server's limit, not wsc's:
# wsc negotiates whatever the peer offers.
#
# The fuzzingclient's wss:// connections verify nothing by default (Twisted's
# ClientContextFactory); given a "hostname" in the spec it uses
# optionsForClientTLS, which verifies the chain and the host name (or IP
# address) against the platform's roots. With AUTOBAHN_CLIENT_CA set, that
# CA file is the only trust root instead (run.sh server-wss: the test CA).
#
# Usage: python2 wstest_loopback.py <wstest arguments...>
import os
import sys

from OpenSSL import SSL
from twisted.internet import reactor, ssl

LOOPBACK = "127.0.0.1"

_listen_tcp = reactor.listenTCP
_listen_ssl = reactor.listenSSL


def _loopback_tcp(port, factory, backlog=50, interface=""):
    return _listen_tcp(port, factory, backlog, LOOPBACK)


def _loopback_ssl(port, factory, context_factory, backlog=50, interface=""):
    return _listen_ssl(port, factory, context_factory, backlog, LOOPBACK)


reactor.listenTCP = _loopback_tcp
reactor.listenSSL = _loopback_ssl

_cache_context = ssl.DefaultOpenSSLContextFactory.cacheContext


def _cache_context_tls12(self):
    _cache_context(self)
    self._context.set_options(SSL.OP_NO_TLSv1_3)


ssl.DefaultOpenSSLContextFactory.cacheContext = _cache_context_tls12

_client_ca = os.environ.get("AUTOBAHN_CLIENT_CA")
if _client_ca:
    with open(_client_ca) as f:
        _trust_root = ssl.Certificate.loadPEM(f.read())
    _options_for_client_tls = ssl.optionsForClientTLS

    def _options_trusting_the_test_ca(hostname, trustRoot=None, **kw):
        return _options_for_client_tls(hostname, trustRoot=_trust_root, **kw)

    ssl.optionsForClientTLS = _options_trusting_the_test_ca

if __name__ == "__main__":
    from autobahntestsuite import wstest

    sys.argv[0] = "wstest"
    wstest.run()
