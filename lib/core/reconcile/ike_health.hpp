#pragma once
// Whether a peer could connect, on the IKE side: the IKE daemon runs and holds, in the
// kernel, what it needs to start a connection. Pure: judged from facts the adapters
// observe (the IKE unit's state from systemd's signals, the kernel's policies from the
// XFRM dump), never from what the daemon intended.

#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/policy/policy.hpp"

namespace ipopsec {

struct Desired;

// One trap the IKE daemon must hold: strongSwan installs, for a connection with
// `start_action = trap`, an `out` policy from the node's own address (host prefix) to the
// range, whose ACQUIREs start the connection. Without it no connection of that range is
// started from this node ("trap not found" in charon's log).
struct IkeTrap {
  Cidr range;
  IpAddress local;
  std::string str() const;  // "out 172.31.0.16/32 -> 172.31.0.0/16"
  bool operator==(const IkeTrap&) const = default;
};
// Whether `traps` holds `t`.
bool holds(const std::vector<IkeTrap>& traps, const IkeTrap& t);

// The traps the IKE daemon must hold for what it was given (strongSwan: one per range in
// which the node initiates, Desired::ikeInitiating; racoon installs none).
std::vector<IkeTrap> expectedTraps(const Config& cfg, const Desired& d);

// Those of `expected` that `foreign` (the kernel's policies that are not the daemon's) holds.
std::vector<IkeTrap> presentTraps(const std::vector<IkeTrap>& expected, const std::vector<Policy>& foreign);

// Whether a policy is one of the IKE daemon's traps for these ranges: `out local -> range`.
// (A per-SA policy is host to host; the daemon's own are range to range.)
bool isTrapOf(const Policy& p, const std::vector<IkeTrap>& traps);

// systemd's ActiveState of the IKE daemon's unit, read as "it runs": active and reloading
// do; activating/deactivating are transitions; inactive, failed, not-found and masked do
// not. "unknown" (no unit, no answer) is not a verdict.
enum class IkeRunState { running, transition, stopped, unknown };
IkeRunState runStateOf(const std::string& unitState);

}  // namespace ipopsec
