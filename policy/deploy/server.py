"""Split deployment: the policy on a GPU machine (``PolicyServer``), the node on the robot's computer
(``RemoteSource``), over gRPC.

Messages are ``robots.wire`` npz bytes (no pickle, nothing on the wire can run code) through
gRPC's generic handlers, so there is no generated code to keep in step. The server binds to
loopback unless told otherwise, and refuses to listen on any other address without a shared
token, which every call must then carry (``authorization: Bearer TOKEN`` metadata).

```
reverie serve checkpoint=runs/push port=50051                         # loopback only
REVERIE_TOKEN=... reverie serve checkpoint=runs/push host=0.0.0.0     # exposed, token required
reverie deploy robot=so101 server=gpu-box:50051 ...                   # the node, REVERIE_TOKEN set
```
"""

from __future__ import annotations

import hmac
import ipaddress
from concurrent import futures
from typing import Any

import grpc
import numpy as np

from policy.deploy.source import PlanRequest, PolicySource
from robots.wire import WireError, decode, encode

SERVICE = "reverie.Policy"
TOKEN_ENV = "REVERIE_TOKEN"
_OBS = "obs"


def request_to_wire(request: PlanRequest) -> bytes:
    msg: dict[str, Any] = {"past": request.past, "committed": request.committed,
                           "n_obs": len(request.observations)}
    for i, obs in enumerate(request.observations):
        for k, v in obs.items():
            msg[f"{_OBS}{i}.{k}"] = v
    return encode(msg)


def request_from_wire(data: bytes) -> PlanRequest:
    msg = decode(data)
    try:
        n = int(msg["n_obs"])
        obs: list[dict[str, Any]] = [{} for _ in range(n)]
        for key, v in msg.items():
            if key.startswith(_OBS):
                i, name = key[len(_OBS):].split(".", 1)
                obs[int(i)][name] = v
        return PlanRequest(obs, np.asarray(msg["past"]), np.asarray(msg["committed"]))
    except (KeyError, ValueError, IndexError) as e:
        raise WireError(f"not a plan request ({e})") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PolicyServer:
    """Serves ``source.plan`` (and ``Info``: the shapes a node must send) on ``host:port``."""

    def __init__(self, source: PolicySource, host: str = "127.0.0.1", port: int = 50051,
                 token: str | None = None) -> None:
        if not _is_loopback(host) and not token:
            raise ValueError(f"refusing to serve on {host} without a token: set ${TOKEN_ENV} "
                             "(or bind to 127.0.0.1)")
        self.source, self.host, self.token = source, host, token
        shapes = source.policy.shapes
        self.info = {"task": shapes.task, "robot": shapes.robot, "n_obs_steps": source.policy.cfg.n_obs_steps,
                     "action_dim": shapes.action_dim, "max_committed": source.max_committed,
                     "execute_steps": source.execute_steps}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # one inference at a time
        handlers = {"Plan": grpc.unary_unary_rpc_method_handler(self._plan),
                    "Info": grpc.unary_unary_rpc_method_handler(self._info)}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise ValueError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)")

    def start(self) -> PolicyServer:
        self._server.start()
        return self

    def stop(self, grace: float | None = None) -> None:
        self._server.stop(grace)

    def wait(self) -> None:
        self._server.wait_for_termination()

    def _authorised(self, context) -> bool:
        if not self.token:
            return True
        got = dict(context.invocation_metadata()).get("authorization", "")
        return hmac.compare_digest(got, f"Bearer {self.token}")

    def _plan(self, data: bytes, context) -> bytes:
        if not self._authorised(context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing token")
        try:
            return encode({"actions": self.source.plan(request_from_wire(data))})
        except ValueError as e:  # WireError and bad shapes
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))

    def _info(self, data: bytes, context) -> bytes:
        if not self._authorised(context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing token")
        return encode(self.info)


class RemoteSource:
    """A ``ChunkSource`` that asks a ``PolicyServer``; each call times out after ``timeout_s``."""

    def __init__(self, address: str, token: str | None = None, timeout_s: float = 1.0) -> None:
        self.address, self.timeout_s = address, timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = grpc.insecure_channel(address)
        self._plan = self._channel.unary_unary(f"/{SERVICE}/Plan")
        self._info = self._channel.unary_unary(f"/{SERVICE}/Info")

    def info(self) -> dict[str, Any]:
        return decode(self._call(self._info, b""))

    @property
    def max_committed(self) -> int:
        return int(self.info()["max_committed"])

    @property
    def execute_steps(self) -> int:
        return int(self.info()["execute_steps"])

    def plan(self, request: PlanRequest) -> np.ndarray:
        return np.asarray(decode(self._call(self._plan, request_to_wire(request)))["actions"])

    def _call(self, method, payload: bytes) -> bytes:
        try:
            return method(payload, timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as e:
            raise ConnectionError(f"policy server {self.address}: {e.code().name}: {e.details()}") from None

    def close(self) -> None:
        self._channel.close()
