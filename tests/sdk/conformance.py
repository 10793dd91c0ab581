"""Gcore's official Python SDK (PyPI `gcore`, pinned in requirements.txt) against a real
apitokens server, with strict response validation: every IAM call the SDK has, and the error
class it raises for 400/401/403/404. A raise where none is due, or a field of the wrong type,
fails the run.

    APITOKENS_BIN=target/debug/apitokens python tests/sdk/conformance.py [DATABASE_URL]

Without DATABASE_URL the server runs on a fresh SQLite file; with a postgres:// URL it runs
on that database (which it migrates; use an empty one). `tests/sdk/run` sets all this up.
"""

import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time

import gcore
import httpx

PASSWORD = "sdk conformance password"
ADMIN = "admin@sdk.test"
CHECKS = []


def check(name):
    def wrap(fn):
        CHECKS.append((name, fn))
        return fn

    return wrap


def expect(error_class, call):
    try:
        call()
    except error_class:
        return
    except Exception as e:  # noqa: BLE001 - report the wrong class by name
        raise AssertionError(f"expected {error_class.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"expected {error_class.__name__}, nothing was raised")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, database_url):
        self.dir = tempfile.mkdtemp(prefix="apitokens-sdk-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            APITOKENS_DATA_DIR=self.dir,
            APITOKENS_BIND=f"127.0.0.1:{self.port}",
            DATABASE_URL=database_url or f"sqlite://{self.dir}/sdk.db",
            RUST_LOG="warn",
        )
        subprocess.run(
            [binary, "user", "add", "--account", "SDK Inc", "--email", ADMIN,
             "--name", "Ada Admin", "--role", "Administrators", "--password-stdin"],
            input=PASSWORD + "\n", text=True, env=self.env, check=True, capture_output=True,
        )
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.process = subprocess.Popen([binary, "serve"], env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline or self.process.poll() is not None:
                raise SystemExit(f"the server did not start; see {self.log.name}")
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def bootstrap(server):
    """An Administrators token to hand to the SDK (the SDK has no login call)."""
    jwt = httpx.post(f"{server.base}/iam/auth/jwt/login",
                     json={"username": ADMIN, "password": PASSWORD}).json()["access"]
    me = httpx.get(f"{server.base}/iam/users/me",
                   headers={"Authorization": f"Bearer {jwt}"}).json()
    created = httpx.post(
        f"{server.base}/iam/v2/clients/{me['client']}/tokens",
        headers={"Authorization": f"Bearer {jwt}"},
        json={"name": "sdk", "exp_date": None, "client_user": {"role": {"id": 1}}},
    ).json()
    return int(me["client"]), me["id"], created["token"]


def client(server, api_key):
    return gcore.Gcore(api_key=api_key, base_url=server.base, max_retries=0,
                       _strict_response_validation=True)


def in_a_year(fmt):
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=365)
    return at.strftime(fmt)


@check("account overview")
def account_overview(ctx):
    overview = ctx.sdk.iam.get_account_overview()
    assert overview.id == ctx.account, overview
    assert overview.current_user == ctx.admin_id
    assert any(u.email == ADMIN for u in overview.users)


@check("tokens: create with a role, without one, and with every exp_date form")
def tokens_create(ctx):
    tokens = ctx.sdk.iam.api_tokens
    made = tokens.create(ctx.account, name="engineers", exp_date=None,
                         client_user={"role": {"id": 5, "name": "Engineers"}},
                         description="from the SDK")
    assert made.token and made.token.startswith(f"{made.id}_"), made
    assert made.client_user.role.id == 5 and made.exp_date is None
    least = tokens.create(ctx.account, name="least", exp_date=None, client_user={})
    assert least.client_user.role.name == "Users", least
    for fmt in ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.000000Z", "%Y-%m-%dT%H:%M:%S+0000",
                "%Y-%m-%dT%H:%M:%S+00:00"]:
        dated = tokens.create(ctx.account, name=f"dated {fmt}", exp_date=in_a_year(fmt),
                              client_user={"role": {"id": 2}})
        assert dated.exp_date and not dated.expired, dated
    ctx.engineers_token = made


@check("tokens: list with each filter, get, delete")
def tokens_list_get_delete(ctx):
    tokens = ctx.sdk.iam.api_tokens
    everything = tokens.list(ctx.account)
    assert len(everything) >= 7, everything
    engineers = tokens.list(ctx.account, role="Engineers")
    assert [t.name for t in engineers] == ["engineers"], engineers
    assert len(tokens.list(ctx.account, issued_by=ctx.admin_id)) == len(everything)
    assert tokens.list(ctx.account, not_issued_by=ctx.admin_id) == []
    one = tokens.get(ctx.engineers_token.id, client_id=ctx.account)
    assert one.name == "engineers" and one.description == "from the SDK"
    assert tokens.delete(ctx.engineers_token.id, client_id=ctx.account) is None
    deleted = tokens.list(ctx.account, deleted=True)
    assert [t.id for t in deleted] == [ctx.engineers_token.id], deleted
    assert deleted[0].deleted and deleted[0].client_user.deleted
    assert all(not t.deleted for t in tokens.list(ctx.account, deleted=False))


@check("users: invite (with and without name), list across pages, get")
def users_invite_list_get(ctx):
    users = ctx.sdk.iam.users
    named = users.invite(client_id=ctx.account, email="eng@sdk.test",
                         user_role={"id": 5, "name": "Engineers"}, name="Eve Engineer", lang="de")
    assert named.status == "sent" and named.user_id > 0, named
    nameless = users.invite(client_id=ctx.account, email="nameless@sdk.test",
                            user_role={"id": 2})
    ctx.eng_id, ctx.nameless_id = named.user_id, nameless.user_id
    for n in range(55):
        users.invite(client_id=ctx.account, email=f"bulk{n:02}@sdk.test", user_role={"id": 2},
                     lang="az")
    listed = list(users.list())  # the SDK pages by 50 until it has `count`
    ids = [u.id for u in listed]
    assert len(ids) == 58 and len(set(ids)) == 58, len(ids)
    first = users.list(limit=50)
    assert len(first.results) == 50 and first.count == 58
    eve = users.get(ctx.eng_id)
    assert (eve.name, eve.lang, eve.groups[0].name) == ("Eve Engineer", "de", "Engineers"), eve
    assert users.get(ctx.nameless_id).name is None


@check("users: update each field")
def users_update(ctx):
    users = ctx.sdk.iam.users
    u = users.update(ctx.eng_id, name="Eve E.", phone="+1 555 0100", lang="az")
    assert (u.name, u.phone, u.lang) == ("Eve E.", "+1 555 0100", "az"), u
    assert u.client_and_roles[0].user_roles == ["Engineers"]
    u = users.update(ctx.eng_id, name=None, phone=None)
    assert (u.name, u.phone) == (None, None), u
    u = users.update(ctx.eng_id, email="Eve.New@SDK.test")
    assert u.email == "eve.new@sdk.test", u
    u = users.update(ctx.eng_id, auth_types=["password"])
    assert u.auth_types == ["password"]
    expect(gcore.BadRequestError, lambda: users.update(ctx.eng_id, auth_types=["github"]))
    expect(gcore.BadRequestError, lambda: users.update(ctx.eng_id, email=ADMIN))


@check("users: delete")
def users_delete(ctx):
    users = ctx.sdk.iam.users
    assert users.delete(ctx.nameless_id, client_id=ctx.account) is None
    assert users.get(ctx.nameless_id).deleted is True


@check("errors: 400, 401, 403, 404 as the SDK's classes")
def errors(ctx):
    tokens = ctx.sdk.iam.api_tokens
    expect(gcore.BadRequestError, lambda: tokens.create(
        ctx.account, name="", exp_date=None, client_user={"role": {"id": 2}}))
    expect(gcore.BadRequestError, lambda: tokens.create(
        ctx.account, name="past", exp_date="2000-01-01T00:00:00Z", client_user={}))
    expect(gcore.NotFoundError, lambda: tokens.get(999999, client_id=ctx.account))
    expect(gcore.NotFoundError, lambda: ctx.sdk.iam.users.get(999999))
    expect(gcore.AuthenticationError,
           lambda: client(ctx.server, f"1_{'0' * 64}").iam.get_account_overview())
    weak = tokens.create(ctx.account, name="weak", exp_date=None, client_user={"role": {"id": 2}})
    low = client(ctx.server, weak.token)
    expect(gcore.PermissionDeniedError, lambda: list(low.iam.users.list()))
    expect(gcore.PermissionDeniedError,
           lambda: low.iam.users.delete(ctx.eng_id, client_id=ctx.account))


class Context:
    pass


def main():
    binary = os.environ.get("APITOKENS_BIN") or "target/debug/apitokens"
    database_url = sys.argv[1] if len(sys.argv) > 1 else None
    server = Server(binary, database_url)
    failed = 0
    try:
        ctx = Context()
        ctx.server = server
        ctx.account, ctx.admin_id, token = bootstrap(server)
        ctx.sdk = client(server, token)
        for name, fn in CHECKS:
            try:
                fn(ctx)
                print(f"ok    {name}")
            except Exception as e:  # noqa: BLE001 - every failure is reported, then the run fails
                failed += 1
                print(f"FAIL  {name}: {type(e).__name__}: {e}")
    finally:
        server.stop()
    where = "PostgreSQL" if database_url else "SQLite"
    print(f"gcore {gcore.__version__} SDK on {where}: {len(CHECKS) - failed} of {len(CHECKS)} passed")
    if failed:
        print(f"server log: {server.log.name}")
        sys.exit(1)


if __name__ == "__main__":
    main()
