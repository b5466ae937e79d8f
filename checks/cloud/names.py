"""The course's names and a real cloud's.

The course types `openstack server create --flavor small --image 'Debian 13' --net public`; a teacher's
cloud calls them `m1.small`, `debian-13-genericcloud-amd64`, `ext-net`. The scenarios that only need *an*
image, flavor or network pick a fitting one (compute.pick_image, pick_flavor, network.external_network);
the course-verbatim scenarios use the names a teacher gives once — `popek.yaml`:

    course-names:
      small: m1.small
      Debian 13: debian-13-genericcloud-amd64
      public: ext-net

or `popek run --flavor m1.small --image debian-13-genericcloud-amd64 --net ext-net` — else the course's
own names; a name the cloud lacks skips the scenario with the reason ("le cloud n'a pas d'image
« Debian 13 » (donnez --image …)"), never fails it.
"""
from __future__ import annotations

from typing import Mapping, Optional

#: (kind, the course's name, French "the cloud has no …", the option that gives another name)
COURSE = (("flavor", "small", "de gabarit", "--flavor"),
          ("image", "Debian 13", "d'image", "--image"),
          ("network", "public", "de réseau", "--net"))
COURSE_NAMES = tuple(name for _, name, _, _ in COURSE)
#: key of the mapping in popek.yaml
CONFIG_KEY = "course-names"


def parse(data, where: str) -> dict[str, str]:
    """The mapping {course name: cloud name} of a loaded popek.yaml (None or a file without the key: {}).

    ValueError (French, naming `where`) for anything else than a mapping of the course's names to
    non-empty strings."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{where} : il faut des clés (par exemple « {CONFIG_KEY}: »)")
    names = data.get(CONFIG_KEY)
    if names is None:
        return {}
    if not isinstance(names, dict):
        raise ValueError(f"{where} : « {CONFIG_KEY}: » doit associer un nom du cours à un nom du cloud")
    mapping = {}
    for course, cloud in names.items():
        if course not in COURSE_NAMES:
            raise ValueError(f"{where} : « {course} » n'est pas un nom du cours ({', '.join(COURSE_NAMES)})")
        if not isinstance(cloud, str) or not cloud.strip():
            raise ValueError(f"{where} : nom du cloud vide ou invalide pour « {course} »")
        mapping[course] = cloud.strip()
    return mapping


def from_options(flavor: Optional[str] = None, image: Optional[str] = None, network: Optional[str] = None) -> dict:
    """The mapping given by `--flavor`, `--image`, `--net` (each None when not given)."""
    given = {"small": flavor, "Debian 13": image, "public": network}
    return {course: cloud for course, cloud in given.items() if cloud}


def _find(conn, kind: str, name: str):
    if kind == "flavor":
        return conn.compute.find_flavor(name, ignore_missing=True)
    if kind == "image":
        return next((i for i in conn.image.images(name=name) if i.status == "active"), None) or \
            next((i for i in [conn.image.find_image(name, ignore_missing=True)] if i and i.status == "active"), None)
    return conn.network.find_network(name, ignore_missing=True)


def resolve(conn, mapping: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """({kind: the cloud's name}, [why not, in French]) for the course's flavor, image and network.

    mapping: {course name: cloud name} (parse() / from_options()); a course name not in it is looked
    up as it is. The reasons name what the cloud lacks and the option that would give it."""
    chosen, missing = {}, []
    for kind, course, lacking, option in COURSE:
        name = mapping.get(course, course)
        if _find(conn, kind, name) is None:
            given = f", nom donné pour « {course} »" if name != course else ""
            missing.append(f"le cloud n'a pas {lacking} « {name} »{given} (donnez {option} …)")
        chosen[kind] = name
    return chosen, missing


def server_create_args(chosen: Mapping[str, str]) -> tuple[str, ...]:
    """The course's `server create` with the cloud's names (resolve()'s first value)."""
    return ("server", "create", "--flavor", chosen["flavor"], "--image", chosen["image"], "--net", chosen["network"])
