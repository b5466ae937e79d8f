"""neutron-api's entry point (neutronapi.py): subquery backrefs declared as selectin loads, the module where
gunicorn imports it, and neutron.conf's [placement] section for the segments notifier."""
from pathlib import Path

from popek.checks.localcloud import config, neutronapi, services
from popek.checks.localcloud.state import CloudState


class FakeOrm:
    """sqlalchemy.orm's backref(): the name and the keyword arguments it was given."""
    @staticmethod
    def backref(name, **kwargs):
        return name, kwargs


def test_only_subquery_backrefs_become_selectin_the_rest_is_passed_as_is():
    orm = FakeOrm()
    neutronapi.selectin_backrefs(orm)
    assert orm.backref("hints", uselist=False, cascade="delete", lazy="subquery") == \
        ("hints", {"uselist": False, "cascade": "delete", "lazy": "selectin"})
    assert orm.backref("rules", cascade="all,delete", lazy="joined") == ("rules", {"cascade": "all,delete", "lazy": "joined"})
    assert orm.backref("source_rules", cascade="all,delete") == ("source_rules", {"cascade": "all,delete"})
    wrapped = orm.backref
    neutronapi.selectin_backrefs(orm)  # a second call does not wrap the wrapper
    assert orm.backref is wrapped


def test_neutron_api_loads_the_copied_module_from_its_working_directory(tmp_path):
    state = CloudState(tmp_path)
    cfg = config.generate(state)
    conf = cfg["neutron/gunicorn-neutron-api/gunicorn.conf.py"][""]
    assert conf["wsgi_app"] == f"{config.NEUTRON_API_MODULE}:load()"
    table = {s.name: s for s in services.core_services(state)}
    path = config.neutron_api_path(state)
    assert path.parent == Path(table["neutron-api"].cwd) and path.stem == config.NEUTRON_API_MODULE


def test_neutron_conf_has_a_placement_section_with_neutrons_service_user(tmp_path):
    state = CloudState(tmp_path)
    neutron = config.generate(state)["neutron/neutron.conf"]
    placement, nova = neutron["placement"], neutron["nova"]
    assert placement["auth_type"] == "password" and placement["username"] == "neutron"
    assert placement["auth_url"] == state.url("keystone") + "/v3" and placement == nova
