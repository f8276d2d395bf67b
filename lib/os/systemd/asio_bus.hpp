#pragma once
// sd-bus on Boost.Asio: one connection to the system bus whose descriptor and timeout are
// waited for on the io_context (never a thread, never a blocking wait except waitReady),
// and the handles and error texts of sd-bus. SystemdUnit builds on it.

#include <utility>  // before any boost/asio header (Boost 1.74 + g++12)

#include <systemd/sd-bus.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include "os/c_handle.hpp"

namespace ipopsec {

// Close without flushing: sd_bus_flush() blocks (for up to the 90 s authentication
// timeout on a bus that never answered), and nothing queued is worth that.
using BusPtr = CHandle<sd_bus, sd_bus_close_unref>;
using SlotPtr = CHandle<sd_bus_slot, sd_bus_slot_unref>;
using MessagePtr = CHandle<sd_bus_message, sd_bus_message_unref>;

class BusError {
 public:
  BusError() = default;
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  ~BusError() { sd_bus_error_free(&e_); }
  sd_bus_error* get() { return &e_; }

 private:
  sd_bus_error e_ = SD_BUS_ERROR_NULL;
};

// "org.freedesktop.DBus.Error.X: message", or "unknown error".
std::string busErrorText(const sd_bus_error* e);
// The call timed out or got no reply.
bool isBusTimeout(const sd_bus_error* e);
// sd-bus's microseconds for a timeout (at least 1).
std::uint64_t busUsec(std::chrono::milliseconds d);

class AsioBus {
 public:
  explicit AsioBus(boost::asio::io_context& io);
  ~AsioBus();
  AsioBus(const AsioBus&) = delete;
  AsioBus& operator=(const AsioBus&) = delete;

  // Connects to the system bus and puts its descriptor on the io_context; on failure the
  // error and `detail` ("cannot connect to the system bus: ...").
  std::error_code open(std::string& detail);
  // Forgets the connection (no flush); handlers still pending for it are ignored. The
  // owner drops its slots first: they hold references to the bus.
  void close();
  sd_bus* get() const { return bus_.get(); }
  explicit operator bool() const { return static_cast<bool>(bus_); }

  // Waits for what sd-bus wants next: readable, writable, or its own timeout; then process().
  void arm();
  // Dispatches everything sd-bus has (replies, signals: the callbacks run here), then arm().
  void process();
  // Blocks until the connection is authenticated and running, at most until `deadline`.
  // (sd_bus_call() alone would wait for the bus's own 90 s authentication timeout.)
  bool waitReady(std::chrono::steady_clock::time_point deadline);
  // Called with sd-bus's negative errno when the connection breaks (connection reset,
  // protocol error); the connection is still open then: the owner closes it.
  void onBroken(std::function<void(int)> f) { onBroken_ = std::move(f); }

 private:
  void broken(int r);

  boost::asio::io_context& io_;
  BusPtr bus_;
  boost::asio::posix::stream_descriptor fd_;
  boost::asio::steady_timer timer_;
  bool readArmed_ = false;
  bool writeArmed_ = false;
  unsigned gen_ = 0;  // handlers of a closed connection are ignored
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // handlers of a destroyed AsioBus too
  std::function<void(int)> onBroken_;
};

}  // namespace ipopsec
