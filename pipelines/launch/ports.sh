# shellcheck shell=bash
# pipelines/launch/ports.sh: choosing tcp ports for the generation graphs
# (sourced by pipelines/launch/gen.sh and pipelines/full.sh).
#
# Why: a port inside the kernel's ephemeral range (the local ports connect()
# picks, /proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default) can
# be held by any outgoing connection, including one of our own stages'
# connections of an earlier graph lingering in TIME_WAIT for a minute; a stage
# binding that port then fails with "address already in use", even with
# SO_REUSEADDR. Ports below the range are never handed out that way.

# ephemeral_range: prints "LO HI", the kernel's range (its default when unreadable).
ephemeral_range() {
  local lo hi
  read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [[ "${lo:-}" =~ ^[0-9]+$ && "${hi:-}" =~ ^[0-9]+$ ]] || { lo=32768; hi=60999; }
  echo "$lo $hi"
}

# default_port_base SPAN SEED: a first port for SPAN consecutive ports,
# spread by SEED (e.g. the process id) over 10000 .. LO-SPAN-1, below the
# ephemeral range; above it when too little room is left below; anywhere
# when neither side has room (port_range_note then says so).
default_port_base() {
  local span=$1 seed=$2 lo hi
  read -r lo hi <<< "$(ephemeral_range)"
  if [ $(( lo - span - 10000 )) -ge 1000 ]; then echo $(( 10000 + (seed * 7919) % (lo - span - 10000) ))
  elif [ $(( 65535 - hi - span )) -ge 1000 ]; then echo $(( hi + 1 + (seed * 7919) % (65535 - hi - span) ))
  else echo $(( 10000 + (seed * 7919) % (55536 - span) )); fi
}

# port_range_note ME FIRST LAST: a note on stderr when FIRST..LAST overlaps
# this host's ephemeral range (the run may still work: the note says why a
# bind could fail, not that one will).
port_range_note() {
  local lo hi
  read -r lo hi <<< "$(ephemeral_range)"
  if [ "$3" -ge "$lo" ] && [ "$2" -le "$hi" ]; then
    echo "$1: note: tcp ports $2..$3 overlap this host's ephemeral range $lo-$hi" \
      "(/proc/sys/net/ipv4/ip_local_port_range): an outgoing connection may hold one of them," \
      "and binding it then fails (address already in use); ports outside it avoid that" >&2
  fi
  return 0
}
