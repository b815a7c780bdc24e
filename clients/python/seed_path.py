"""The seed's recovery path, driven from Python through stubs generated from
proto/ with grpcio-tools: suspension, refused login, reset through the e-mail
file, login, information centre, ticket. Exits non-zero on the first surprise.

    python3 seed_path.py --addr 127.0.0.1:50051 --service-token gdc_... \
        --security-token gdc_... --mail-dir gardien-data/mail
"""

import argparse
import glob
import os
import re
import sys
import time

import grpc

from gardien.accountsecurity.v1 import account_security_service_pb2 as pb
from gardien.accountsecurity.v1 import account_security_service_pb2_grpc as pb_grpc
from gardien.accountsecurity.v1 import types_pb2 as types
from gardien.support.v1 import support_service_pb2 as spb
from gardien.support.v1 import support_service_pb2_grpc as spb_grpc
from gardien.support.v1 import types_pb2 as stypes

PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "une falaise bleue au-dessus de la mer"


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


def expect_error(call, code):
    try:
        call()
    except grpc.RpcError as error:
        if error.code() != code:
            sys.exit(f"expected {code}, got {error.code()}: {error.details()}")
        return error
    sys.exit(f"expected {code}, the call succeeded")


def newest_token(mail_dir, recipient, after):
    deadline = time.time() + 10
    while time.time() < deadline:
        for path in sorted(glob.glob(os.path.join(mail_dir, "*.eml")), key=os.path.getmtime, reverse=True):
            if os.path.getmtime(path) < after:
                continue
            text = open(path, encoding="utf-8").read()
            match = re.search(r"token=(gdr_[A-Za-z0-9_-]+)", text)
            if match and f"To: {recipient}" in text:
                return match.group(1)
        time.sleep(0.1)
    sys.exit("no reset e-mail arrived")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--service-token", required=True)
    parser.add_argument("--security-token", required=True)
    parser.add_argument("--mail-dir", required=True)
    args = parser.parse_args()

    channel = grpc.insecure_channel(args.addr)
    accounts = pb_grpc.AccountSecurityServiceStub(channel)
    support = spb_grpc.SupportServiceStub(channel)
    login = f"py.{int(time.time() * 1000)}"
    email = f"{login}@example.org"

    account = accounts.CreateAccount(
        pb.CreateAccountRequest(login=login, email=email, password=PASSWORD, locale=types.LOCALE_FR),
        metadata=bearer(args.service_token),
    ).account
    print("created", account.account_id)

    session = accounts.Login(pb.LoginRequest(login=login, password=PASSWORD)).session
    suspended = accounts.SuspendPassword(
        pb.SuspendPasswordRequest(
            account_id=account.account_id,
            reason=types.SUSPENSION_REASON_SUSPECTED_COMPROMISE,
            note="seen in a credential leak",
        ),
        metadata=bearer(args.security_token),
    )
    assert suspended.sessions_revoked == 1, suspended
    print("suspended; sessions revoked:", suspended.sessions_revoked)

    expect_error(lambda: accounts.ListSessions(pb.ListSessionsRequest(), metadata=bearer(session.session_token)), grpc.StatusCode.UNAUTHENTICATED)
    expect_error(lambda: accounts.Login(pb.LoginRequest(login=login, password=PASSWORD)), grpc.StatusCode.FAILED_PRECONDITION)
    expect_error(lambda: accounts.Login(pb.LoginRequest(login=login, password="not the password at all")), grpc.StatusCode.UNAUTHENTICATED)
    print("old session refused; login refused as suspended")

    asked = time.time() - 1
    accounts.RequestPasswordReset(pb.RequestPasswordResetRequest(login_or_email=email))
    token = newest_token(args.mail_dir, email, asked)
    accounts.CompletePasswordReset(pb.CompletePasswordResetRequest(reset_token=token, new_password=NEW_PASSWORD))
    print("password reset through the e-mailed link")

    session = accounts.Login(pb.LoginRequest(login=login, password=NEW_PASSWORD)).session
    auth = bearer(session.session_token)
    overview = accounts.GetSecurityOverview(pb.GetSecurityOverviewRequest(), metadata=auth)
    assert overview.password_state == types.PASSWORD_STATE_ACTIVE, overview
    events = accounts.ListSecurityEvents(pb.ListSecurityEventsRequest(page_size=50), metadata=auth).events
    kinds = {event.kind for event in events}
    assert types.SECURITY_EVENT_KIND_PASSWORD_SUSPENDED in kinds, kinds
    assert types.SECURITY_EVENT_KIND_PASSWORD_RESET_COMPLETED in kinds, kinds
    print("information centre:", len(events), "events; recommended:", [a.kind for a in overview.recommended_actions])

    ticket = support.CreateTicket(
        spb.CreateTicketRequest(
            client_request_id="py-1",
            category=stypes.TICKET_CATEGORY_SECURITY_VERIFICATION,
            subject="Please check my account",
            body="My password was suspended; was anything done without me?",
        ),
        metadata=auth,
    ).ticket
    again = support.CreateTicket(
        spb.CreateTicketRequest(
            client_request_id="py-1",
            category=stypes.TICKET_CATEGORY_SECURITY_VERIFICATION,
            subject="Please check my account",
            body="My password was suspended; was anything done without me?",
        ),
        metadata=auth,
    ).ticket
    assert again.ticket_id == ticket.ticket_id
    print("ticket", ticket.reference, "opened")
    print("python client: seed path passed")


if __name__ == "__main__":
    main()
