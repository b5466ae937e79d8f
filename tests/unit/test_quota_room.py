"""The project's quota, the pure parts (checks/cloud/compute.py): Nova's and Cinder's absolute limits ->
the French reason a scenario is IGNORÉ for (the quota, its limit, its use), and Nova's refusals for lack of
quota (the API's 403, a build its conductor's recheck put in ERROR, code 413) read as that same reason,
while every other refusal or fault stays ÉCHEC. Fakes stand for the SDK's objects only."""
from types import SimpleNamespace as NS

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import compute
from popek.steps import cloud_compute

#: Nova's recheck fault, as measured live (demo project, instance quota 1, `popek run -n 2`).
RECHECK = "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"


def nova(instances=10, used=0, cores=20, cores_used=0, ram=51200, ram_used=0):
    return NS(instances=instances, instances_used=used, total_cores=cores, total_cores_used=cores_used,
              total_ram=ram, total_ram_used=ram_used)


def test_an_instance_quota_without_room_is_a_reason_with_its_limit_and_use():
    reason = compute.room_reason(nova(1, 1), None, {"instances": 1, "cores": 1, "ram": 256})
    assert reason.startswith("le quota de ce projet ne laisse pas la place dont ce scénario a besoin (Nova, ")
    assert "quota instances : limite 1 instance(s), en usage 1, il en faut 1 de plus" in reason
    assert "pas une panne du cloud" in reason
    # the run's pair: two at once
    assert "il en faut 2 de plus" in compute.room_reason(nova(1, 0), None, {"instances": 2})
    assert compute.room_reason(nova(2, 0), None, {"instances": 2}) is None


def test_cores_and_ram_count_too_and_every_lacking_quota_is_named():
    reason = compute.room_reason(nova(cores=2, cores_used=1, ram=1024, ram_used=800), None,
                                 {"instances": 1, "cores": 2, "ram": 512})
    assert "quota cores : limite 2 vCPU, en usage 1, il en faut 2 de plus" in reason
    assert "quota ram : limite 1024 Mio, en usage 800, il en faut 512 de plus" in reason
    assert "quota instances" not in reason


def test_unknown_or_unlimited_limits_are_no_reason():
    assert compute.room_reason(nova(-1, 99, cores=-1, ram=-1), None, {"instances": 5, "cores": 9, "ram": 9999}) is None
    assert compute.room_reason(NS(), None, {"instances": 1}) is None             # the fields absent
    assert compute.room_reason({"instances": None}, None, {"instances": 1}) is None
    assert compute.room_reason(None, None, {"instances": 1}) is None             # the call refused
    # nothing asked of a quota: never its reason, even at 0
    assert compute.room_reason(nova(0, 0), None, {"instances": 0, "volumes": 1}) is None


def test_cinder_volumes_and_gigabytes():
    cinder = {"max_total_volumes": 10, "total_volumes_used": 10, "max_total_volume_gigabytes": 1000,
              "total_gigabytes_used": 0}
    reason = compute.room_reason(None, cinder, {"volumes": 1, "gigabytes": 1})
    assert "(Cinder, quota volumes : limite 10 volume(s), en usage 10, il en faut 1 de plus)" in reason
    cinder.update(total_volumes_used=0, max_total_volume_gigabytes=1, total_gigabytes_used=1)
    assert "quota gigabytes : limite 1 Gio, en usage 1" in compute.room_reason(None, cinder, {"volumes": 1, "gigabytes": 1})


class Conn:
    """A member connection whose GET /limits answer (or refuse) as given."""

    def __init__(self, nova_limits=None, cinder_limits=None, fips=None):
        def limits(value):
            def get():
                if isinstance(value, Exception):
                    raise value
                return NS(absolute=value)
            return get
        self.compute = NS(get_limits=limits(nova_limits if nova_limits is not None else nova()))
        self.block_storage = NS(get_limits=limits(cinder_limits if cinder_limits is not None else {}))
        self.current_project_id = "p"
        quota = NS(floating_ips=fips or {"limit": -1, "used": 0})
        self.network = NS(get_quota=lambda project_id, details=False: quota)


def test_quota_reason_reads_the_apis_and_a_refused_call_goes_on():
    assert "quota instances : limite 1" in compute.quota_reason(Conn(nova(1, 1)), instances=1)
    assert compute.quota_reason(Conn(sdk_exc.ForbiddenException("policy")), instances=1) is None
    assert compute.quota_reason(Conn(nova(1, 1)), volumes=1, gigabytes=1) is None   # Nova not asked


def test_the_step_helper_skips_before_and_on_a_quota_refusal_only():
    with pytest.raises(pytest.skip.Exception, match="quota instances : limite 1"):
        cloud_compute.room(Conn(nova(1, 1)), instances=1)
    with pytest.raises(pytest.skip.Exception, match="revérification"):
        with cloud_compute.room(Conn(), instances=1):
            raise compute.NoRoom("revérification")
    with pytest.raises(AssertionError):           # any other failure stays ÉCHEC
        with cloud_compute.room(Conn(), instances=1):
            raise AssertionError("No valid host was found.")
    # floating IPs: the same helper as C24's (network.floating_ip_quota_reason), through the same step helper
    with pytest.raises(pytest.skip.Exception, match="quota d'IP flottantes"):
        cloud_compute.room(Conn(fips={"limit": 1, "used": 1}), instances=1, floating_ips=1)
    with pytest.raises(pytest.skip.Exception, match="quota d'IP flottantes de ce projet est 0"):
        cloud_compute.room(Conn(fips={"limit": 0, "used": 0}), floating_ips=0)
    cloud_compute.room(Conn(fips={"limit": 1, "used": 1}), floating_ips=0)   # quota 1: only "none at all" asked
    cloud_compute.room(Conn(nova(1, 1)), floating_ips=1)                    # Nova not asked
    assert compute.server_needs(NS(vcpus=2, ram=512), 2) == {"instances": 2, "cores": 4, "ram": 1024}


def test_novas_quota_messages_are_read_with_their_numbers():
    assert compute.quota_refusal(RECHECK) == "quota instances : limite 1, en usage 1, demandé(s) 1"
    two = compute.quota_refusal("Quota exceeded for cores, ram: Requested 2, 1024, but already used 19, 51000 of "
                                "20, 51200 cores, ram")
    assert two == "quota cores : limite 20, en usage 19, demandé(s) 2 ; quota ram : limite 51200, en usage 51000, demandé(s) 1024"
    unified = compute.quota_refusal("Project p is over a limit for [Resource servers is over limit of 1 due to "
                                    "current usage 1 and delta 1]")
    assert unified == "limite unifiée servers : limite 1, en usage 1, demandé(s) 1"
    assert "quota volumes : limite 10" in compute.quota_refusal(
        "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded for quota 'volumes'.")
    assert "limite 1 Gio, en usage 1 Gio, demandé(s) 1 Gio" in compute.quota_refusal(
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 1G, quota is 1G and 1G has been consumed.")


def test_a_quota_message_whose_numbers_leave_room_or_another_error_is_no_quota():
    """A cloud that refuses within the quota fails: its own numbers are checked."""
    assert compute.quota_refusal("Quota exceeded for instances: Requested 1, but already used 1 of 5 instances") is None
    assert compute.quota_refusal("No valid host was found. ") is None
    assert compute.quota_refusal("Quota exceeded, too many key pairs.") is None
    assert compute.quota_refusal(None) is None


def test_only_an_over_quota_fault_is_a_quota_fault():
    assert compute.fault_quota({"code": 413, "message": RECHECK}) == "quota instances : limite 1, en usage 1, demandé(s) 1"
    assert compute.fault_quota({"code": 500, "message": RECHECK}) is None       # not Nova's OverQuota
    assert compute.fault_quota({"code": 500, "message": "No valid host was found. "}) is None
    assert compute.fault_quota({"code": 500, "message": "ProjectOverLimit"}).endswith("(ProjectOverLimit)")
    assert compute.fault_quota(None) is None


def test_use_text_says_use_over_limit():
    assert compute.use_text(nova(1, 1, ram=-1)) == "quota instances 1/1, cores 0/20, ram 0/illimité (en usage/limite)"
    assert compute.use_text(NS()) is None


class Server(NS):
    pass


def member(fault, limits=None):
    server = Server(id="i", name="popek-x-server", status="ERROR", task_state=None, compute_host=None, fault=fault)
    conn = Conn(limits or nova(1, 1))
    conn.compute.get_server = lambda _id: server
    conn.compute.servers = lambda **kw: []
    conn.network.agents = lambda: []
    return conn


def test_a_build_refused_by_the_recheck_is_no_room_with_the_numbers(monkeypatch):
    from popek.checks.cloud import connection
    monkeypatch.setattr(connection, "embedded_trouble", lambda: [])
    with pytest.raises(compute.NoRoom) as err:
        compute.wait_active(member({"code": 413, "message": RECHECK}), NS(id="i", name="popek-x-server"), timeout=5)
    said = str(err.value)
    assert "popek-x-server est passée en ERROR faute de quota" in said and "limite 1, en usage 1, demandé(s) 1" in said
    assert "en ce moment : quota instances 1/1" in said and RECHECK in said
    # any other fault: ÉCHEC as before (AssertionError, not NoRoom)
    with pytest.raises(AssertionError, match="ERROR : No valid host") as err:
        compute.wait_active(member({"code": 500, "message": "No valid host was found. "}), NS(id="i", name="x"),
                            timeout=5)
    assert not isinstance(err.value, compute.NoRoom)


def test_a_create_refused_by_the_api_for_quota_is_no_room_and_another_refusal_fails():
    class Ledger:
        def create(self, kind, what, make):
            return make("popek-x-server")

    def refusing(status, details):
        def create_server(**kw):
            raise sdk_exc.HttpException(message=details, details=details, http_status=status)
        return NS(compute=NS(create_server=create_server))

    args = (Ledger(), "server", NS(id="img"), NS(id="fl"), NS(id="net"))
    with pytest.raises(compute.NoRoom, match=r"faute de quota \(HTTP 403\) : quota instances : limite 1"):
        compute.boot(refusing(403, RECHECK), *args, wait=False)
    with pytest.raises(AssertionError, match="HTTP 403") as err:
        compute.boot(refusing(403, "Policy doesn't allow os_compute_api:servers:create"), *args, wait=False)
    assert not isinstance(err.value, compute.NoRoom)


def test_every_compute_disabled_is_named_as_no_valid_hosts_cause():
    from popek.checks.cloud.stuck import Health

    off = [Health("nova-compute", "h1", True, False, ""), Health("nova-conductor", "h1", True, True, "")]
    said = compute.computes_disabled(off)
    assert "tous désactivés" in said and "nova-compute@h1" in said and "status disabled" in said
    assert compute.computes_disabled([Health("nova-compute", "h1", True, True, ""), *off]) is None
    assert compute.computes_disabled(None) is None


def test_a_volume_refused_by_cinder_for_quota_inside_the_helper_is_ignored():
    refusal = sdk_exc.HttpException(message="x", details="VolumeLimitExceeded: Maximum number of volumes allowed "
                                    "(1) exceeded for quota 'volumes'.", http_status=413)
    with pytest.raises(pytest.skip.Exception, match=r"HTTP 413\) : quota volumes : limite 1 atteinte"):
        with cloud_compute.room(Conn(), volumes=1, gigabytes=1):
            raise refusal
    other = sdk_exc.HttpException(message="x", details="Invalid input received", http_status=400)
    with pytest.raises(sdk_exc.HttpException):
        with cloud_compute.room(Conn(), volumes=1, gigabytes=1):
            raise other


def test_the_runs_pair_is_no_room_before_any_boot_and_stays_so_in_every_worker(tmp_path):
    """The pair needs two servers: a project whose quota leaves fewer is said before Nova is asked
    (Shared._boot_pair), and every worker of the run gets that same NoRoom (not a RuntimeError: ÉCHEC)."""
    import json

    from popek.checks.cloud.shared import RunShared, Shared
    from popek.steps.cloud_common import shared_pair

    booted = []
    conn = Conn(nova(1, 0))
    conn.image = NS(images=lambda: [NS(id="img", name="cirros", status="active", container_format="bare",
                                      disk_format="qcow2", size=1, properties={}, min_ram=0, min_disk=0)])
    conn.compute.flavors = lambda details=True: [NS(id="f", name="tiny", vcpus=1, ram=128, disk=1)]
    conn.compute.create_server = lambda **kw: booted.append(kw)
    shared = Shared(conn, ledger=None)
    with pytest.raises(compute.NoRoom, match="dont la paire d'instances du run a besoin .*limite 1 instance"):
        shared.pair()
    with pytest.raises(pytest.skip.Exception, match="^le quota de ce projet ne laisse pas la place"):
        shared_pair(shared, ledger=None)
    assert booted == []
    # across workers: the state file keeps which error it was
    one = RunShared(None, tmp_path, "popek-0123abcd-run", ("private", "public"))
    record = one._dump("pair", None, compute.NoRoom("quota instances : limite 1"))
    assert record["no_room"] and record["nothing_to_boot"]
    _, error = one._load("pair", json.loads(json.dumps(record)))
    assert type(error) is compute.NoRoom and str(error) == "quota instances : limite 1"


def test_a_compute_nova_disabled_itself_is_named_with_its_reason():
    """F7: the libvirt driver disables its own nova-compute ("AUTO: Connection to libvirt lost: …") when
    libvirtd goes away; « tous désactivés » named the switch, not the cause. An operator's reason is said too."""
    from popek.checks.cloud.stuck import Health

    lost = Health("nova-compute", "h1", True, False, "", "AUTO: Connection to libvirt lost: 1")
    said = compute.computes_disabled([lost])
    assert "désactivés lui-même" in said and "« Connection to libvirt lost: 1 »" in said and "tous désactivés" not in said
    said = compute.computes_disabled([Health("nova-compute", "h2", True, False, "", "maintenance disque"), lost])
    assert "tous désactivés" in said and "(raison : « maintenance disque »)" in said and "libvirt lost" in said
