"""Runs the reference (app.py) like `uvicorn app:app --workers N`, with one correction.

uvicorn's Config.bind_socket() creates the listening socket with proto 0; accepted connections
inherit it, and asyncio only sets TCP_NODELAY when a connection's socket says IPPROTO_TCP. With
--workers > 1 every keep-alive response then waits about 40 ms on Nagle's algorithm and the client's
delayed ACK (uvicorn issue #3149; --workers 1 is not affected, asyncio binds that socket itself). The
benchmark would measure that bug instead of the stack, so this launcher binds the socket with
IPPROTO_TCP and hands it to uvicorn's own multiprocess supervisor, exactly as `uvicorn --workers`
does otherwise.

    /usr/bin/python3 bench/reference/serve.py --port 8001 --workers 2 --loop asyncio --http h11
"""
import argparse
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess


def main():
    parser = argparse.ArgumentParser(description="serve the benchmark reference")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    parser.add_argument("--http", default="h11", choices=["h11", "httptools"])
    args = parser.parse_args()

    config = uvicorn.Config("app:app", host=args.host, port=args.port, workers=args.workers, loop=args.loop,
                            http=args.http, access_log=False, log_level="warning")
    server = uvicorn.Server(config=config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.set_inheritable(True)
    if args.workers > 1:
        Multiprocess(config, target=server.run, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])


if __name__ == "__main__":
    main()
