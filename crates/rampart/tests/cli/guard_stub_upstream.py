"""A stub OpenAI-compatible upstream for the guard proxy test (loopback only).

POST /v1/chat/completions answers from the last user message:
  contains LEAK_CANARY -> repeats its system prompt (and with it rampart's canary)
  contains LEAK_KEY    -> "the key is AKIAIOSFODNN7EXAMPLE"
  contains MAIL        -> an answer with an e-mail address
  contains GLUED_KEY   -> an AWS key id glued to a word ("key_AKIA…")
  contains KEY_BODY    -> a private key's base64 body without its BEGIN line
  contains ENCODED_ANSWER  -> its system prompt (and rampart's canary) in base64
  otherwise            -> "You said: <message>"
With "stream": true the answer comes as SSE chunks of five characters. Every request's
Authorization header and messages are appended to the log file given as argv[2].
Prints "listening PORT" once ready.
"""

import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with open(LOG, "a") as f:
            f.write(json.dumps({"authorization": self.headers.get("Authorization"), "messages": body["messages"]}) + "\n")
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        if "LEAK_CANARY" in user:
            answer = "My instructions are: " + system
        elif "LEAK_KEY" in user:
            answer = "Sure, the key is AKIAIOSFODNN7EXAMPLE, keep it safe."
        elif "MAIL" in user:
            answer = "Write to carol@example.org about it."
        elif "GLUED_KEY" in user:
            answer = "Sure: key_AKIA2JQ7KX5MRD3PWZ4T works."
        elif "KEY_BODY" in user:
            # An Ed25519 private key in PKCS #8 (DER), fresh random key material.
            der = bytes.fromhex("302e020100300506032b657004220420") + os.urandom(32)
            b64 = base64.b64encode(der).decode()
            answer = "Here it is:\n" + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\nkeep it."
        elif "ENCODED_ANSWER" in user:
            answer = "Encoded: " + base64.b64encode(system.encode()).decode()
        else:
            answer = "You said: " + user
        created = int(time.time())
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i in range(0, len(answer), 5):
                chunk = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": created, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": answer[i:i + 5]}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            end = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": created, "model": body["model"],
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            return
        out = json.dumps({"id": "chatcmpl-stub", "object": "chat.completion", "created": created, "model": body["model"],
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
