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


#: the plural of each kind, in the reason of a name several resources bear
PLURAL = {"flavor": "gabarits", "image": "images", "network": "réseaux"}


def _find(conn, kind: str, name: str):
    """What the `openstack` client's `server create` takes for `name`: python-openstackclient calls
    openstacksdk's find_flavor / find_image / find_network with it (an id first, then the name; hidden images
    too, whatever their status). None when nothing bears it; openstack.exceptions.DuplicateResource when
    several do (the client then refuses the command: « More than one Image exists with the name … »)."""
    find = {"flavor": conn.compute.find_flavor, "image": conn.image.find_image,
            "network": conn.network.find_network}[kind]
    return find(name, ignore_missing=True)


def _same_named(conn, kind: str, name: str) -> list[str]:
    """The ids of the `kind` resources this account sees named exactly `name` (for the reason of an
    ambiguous name: the ids to give instead); [] when they cannot be listed."""
    try:
        listed = {"flavor": lambda: conn.compute.flavors(), "image": lambda: conn.image.images(name=name),
                  "network": lambda: conn.network.networks(name=name)}[kind]()
        return sorted(r.id for r in listed if r.name == name)
    except Exception:  # the list is a help in the reason, not the finding
        return []


def _why_not(conn, kind: str, name: str, lacking: str, option: str, given: str) -> Optional[str]:
    """Why the `openstack` client's `server create` cannot take `name` for `kind` (French), None when it can."""
    from openstack import exceptions as sdk_exc

    try:
        found = _find(conn, kind, name)
    except sdk_exc.DuplicateResource:
        ids = _same_named(conn, kind, name)
        shown = f" ({', '.join(ids[:4])}{', …' if len(ids) > 4 else ''})" if ids else ""
        return (f"le cloud a plusieurs {PLURAL[kind]} « {name} »{given}{shown} : le client openstack refuse un nom "
                f"ambigu (donnez {option} <id>)")
    if found is None:
        return f"le cloud n'a pas {lacking} « {name} »{given} (donnez {option} …)"
    status = getattr(found, "status", None) if kind == "image" else None
    if status is not None and status != "active":
        return (f"l'image « {name} »{given} est {status}, pas active : Nova ne démarre pas d'instance dessus "
                f"(donnez {option} …)")
    return None


def resolve(conn, mapping: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """({kind: the cloud's name}, [why not, in French]) for the course's flavor, image and network.

    mapping: {course name: cloud name} (parse() / from_options()); a course name not in it is looked
    up as it is, the way the `openstack` client looks it up (_find): a name it would refuse (absent,
    borne by several, an image not active) is a reason, naming what the cloud lacks and the option that
    would give it."""
    chosen, missing = {}, []
    for kind, course, lacking, option in COURSE:
        name = mapping.get(course, course)
        why = _why_not(conn, kind, name, lacking, option, f", nom donné pour « {course} »" if name != course else "")
        if why:
            missing.append(why)
        chosen[kind] = name
    return chosen, missing


def server_create_args(chosen: Mapping[str, str]) -> tuple[str, ...]:
    """The course's `server create` with the cloud's names (resolve()'s first value)."""
    return ("server", "create", "--flavor", chosen["flavor"], "--image", chosen["image"], "--net", chosen["network"])
