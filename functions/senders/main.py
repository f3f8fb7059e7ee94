"""Senders (mailboxes): GET /api/senders, GET/PUT /api/senders/{senderId}."""

import functions_framework

from shared.http import Call, Router
from shared.senders import service
from shared.senders.models import Sender, SenderList, SenderPut
from shared.store.client import get_db

router = Router("senders")


@router.route("/api/senders", methods=["GET"], response=SenderList)
def list_senders(call: Call):
    return service.list_senders(get_db())


@router.route("/api/senders/<sender_id>", methods=["GET"], response=Sender)
def get_sender(call: Call):
    return service.get(get_db(), call.params["sender_id"])


@router.route("/api/senders/<sender_id>", methods=["PUT"], body=SenderPut, response=Sender)
def put_sender(call: Call):
    return service.put(get_db(), call.params["sender_id"], call.json(SenderPut))


@functions_framework.http
def senders(request):
    return router.dispatch(request)
