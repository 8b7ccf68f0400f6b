"""``POST /channels/webhook``: a message from another system, signed with the shared secret.

Body ``{"conversation_id", "message_id", "text", "user_id"?, "locale"?}``; headers ``X-Kefu-Timestamp`` (unix
seconds) and ``X-Kefu-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">``. The answer is the
turn, as ``POST /v1/conversations/{id}/messages`` returns it. Refusals: 404 while ``KEFU_WEBHOOK_SECRET`` is
unset, 401 for a missing, forged or stale signature, 409 for a signed request received before (a new
signature over the same ``message_id`` is fine: it replays the first answer and appends nothing), 400 for
a body that is not JSON, 413 over ``KEFU_MAX_BODY_BYTES``, 422 for bad fields. A request that failed inside
kefu (a 503, say) may be sent again with the same signature.

With Kafka (``KEFU_KAFKA_BOOTSTRAP``) and a callback (``KEFU_WEBHOOK_CALLBACK_URL``), the message is
published to ``kefu.inbound`` after the same checks and answered 202 ``{"conversation_id", "message_id",
"queued": true}``; a ``kefu worker`` runs the turn and the gateway's relay POSTs the answer to the callback.
The same ``message_id`` sent again is published again (the worker answers it from the store; the relay drops
the repeated answer); with other text it is 409 at once; a broker that does not take it, 503
``queue_unavailable``. Without a callback the turn runs here, as without Kafka: the answer has nowhere else
to go.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from kefu.api.deps import RuntimeDep
from kefu.api.errors import ApiError, describe_validation
from kefu.api.routers.channel_wechat import queue_unavailable
from kefu.api.schemas import ERRORS, ID_PATTERN, MessageIn, TurnOut
from kefu.api.turns import inbound
from kefu.channels.kafka.connect import BrokerUnavailable
from kefu.channels.kafka.gateway import KafkaGateway
from kefu.channels.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureRefused
from kefu.channels.webhook import CHANNEL
from kefu.core.types import InboundMessage, MessageIdConflict
from kefu.runtime import Runtime

router = APIRouter(prefix="/channels", tags=["channels"])


class WebhookIn(MessageIn):
    """The contract's message fields plus the conversation; ``message_id`` is required (idempotency key)."""

    conversation_id: str = Field(pattern=ID_PATTERN, description="1-128 characters [A-Za-z0-9._:-]")
    message_id: str = Field(pattern=ID_PATTERN, description="Idempotency key: the same id replays the first answer.")
    channel: Literal["webhook"] = "webhook"


def parse_body(body: bytes) -> WebhookIn:
    try:
        return WebhookIn.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error.get("loc", ()))} for error in exc.errors()]
        status, code, message = describe_validation(RequestValidationError(errors))
        raise ApiError(status, code, message) from exc


@router.post(
    "/webhook",
    response_model=TurnOut,
    responses={
        **ERRORS,
        202: {"description": "Queued for a Kafka worker: the answer goes to KEFU_WEBHOOK_CALLBACK_URL"},
        409: {"description": "Replayed signed request, or message_id reused for other text"},
        503: {"description": "The message queue did not take the message (Kafka); send it again"},
    },
)
async def post_webhook(request: Request, runtime: RuntimeDep) -> Any:
    """One customer message from a signed webhook; the reply is the turn."""
    signed = runtime.channels.webhook if runtime.channels is not None else None
    if signed is None:
        raise ApiError(
            404, "channel_disabled", "the signed webhook is off: set KEFU_WEBHOOK_SECRET / webhook 通道未启用"
        )
    body = await request.body()
    try:
        replay_key = await signed.admit(
            request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body
        )
    except SignatureRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    try:
        payload = parse_body(body)
        said = MessageIn(
            text=payload.text,
            user_id=payload.user_id,
            channel=CHANNEL,
            message_id=payload.message_id,
            locale=payload.locale,
        )
        message = inbound(said, payload.conversation_id, runtime.settings)
        gateway = kafka_route(runtime)
        if gateway is not None:
            await publish(gateway, runtime, message)
            queued_body = {"conversation_id": message.conversation_id, "message_id": message.message_id, "queued": True}
            return JSONResponse(queued_body, status_code=202)
        result = await runtime.pipeline.handle(message)
    except Exception:
        await signed.forget(replay_key)  # nothing was stored: the sender may send this same request again
        raise
    return JSONResponse(result.to_dict())


def kafka_route(runtime: Runtime) -> KafkaGateway | None:
    """Kafka routes webhook messages only when their answers can come back (a callback URL)."""
    if runtime.channels is None or runtime.channels.callback is None:
        return None
    return runtime.kafka


async def publish(gateway: KafkaGateway, runtime: Runtime, message: InboundMessage) -> None:
    """Publishes ``message`` to kefu.inbound. A ``message_id`` already answered for other text is refused
    here (409), as the inline path would, rather than dead-lettered by the worker where the sender never
    hears of it."""
    stored = await runtime.store.find_turn(message.conversation_id, message.message_id)
    if stored is not None and stored.request_sha256 != message.request_sha256:
        raise MessageIdConflict(
            f"message_id {message.message_id!r} was already used in this conversation for a different message"
        )
    try:
        await gateway.publish(message)
    except BrokerUnavailable as exc:
        raise queue_unavailable(exc) from exc
