"""The ML2 mechanism driver of the API-only embedded cloud: it binds every port, on any host.

This module runs INSIDE the cloud's own venv (it imports neutron_lib); popek itself never imports it.
`install.install_alwaysbind()` ships this very file as module `popek_alwaysbind` in a tiny wheel whose
entry point `neutron.ml2.mechanism_drivers: popek_alwaysbind` is what neutron's stevedore loader needs
(ML2 loads mechanism drivers by entry-point name only; a class path is not accepted).

Why: without agents no driver would bind a port, nova would get PortBindingFailed; neutron's own
`test` driver only binds a magic host name and asserts on update (research pitfall 6). With the fake
compute driver nothing is plugged anyway, so the binding is the API-level truth the course needs:
vif_type `ovs`, port ACTIVE.
"""
from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class AlwaysBindDriver(api.MechanismDriver):
    """Bind any port to the first segment of its network, as an OVS port, status ACTIVE."""

    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2
