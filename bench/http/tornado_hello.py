"""bench/http/tornado_hello.py: the tornado demo that ioloop-host's
hello_http reproduces (issue 2), as given there, except that the port
(default 8888) comes from the command line and it listens on 127.0.0.1
only.

Usage: python3 tornado_hello.py [PORT]
"""
import sys

import tornado.httpserver
import tornado.ioloop
import tornado.web


class AsyncHttpHandler(tornado.web.RequestHandler):
    def get(self):
        self.finish("hello")


app = tornado.web.Application(handlers=[(r"/", AsyncHttpHandler)])
server = tornado.httpserver.HTTPServer(app, xheaders=True)
server.listen(int(sys.argv[1]) if len(sys.argv) > 1 else 8888,
              address="127.0.0.1")
tornado.ioloop.IOLoop.current().start()
