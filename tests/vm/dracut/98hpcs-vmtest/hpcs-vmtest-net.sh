#!/bin/sh
# VM test only (hpcs-vmtest-net.service): the guest's IPv4 addresses and
# routes once the network is online, one line each,
#   HPCS-NET addr: ...   HPCS-NET route: ...
ip -4 -o addr show scope global | sed 's/^/HPCS-NET addr: /'
ip -4 route show | sed 's/^/HPCS-NET route: /'
