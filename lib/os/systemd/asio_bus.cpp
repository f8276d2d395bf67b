#include "os/systemd/asio_bus.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ipopsec {

std::string busErrorText(const sd_bus_error* e) {
  if (!e || !e->name) return "unknown error";
  std::string s = e->name;
  if (e->message) s += std::string(": ") + e->message;
  return s;
}

bool isBusTimeout(const sd_bus_error* e) {
  return e && e->name &&
         (std::strcmp(e->name, SD_BUS_ERROR_TIMEOUT) == 0 || std::strcmp(e->name, SD_BUS_ERROR_NO_REPLY) == 0);
}

std::uint64_t busUsec(std::chrono::milliseconds d) {
  return static_cast<std::uint64_t>(std::max<std::chrono::milliseconds::rep>(d.count(), 1)) * 1000U;
}

AsioBus::AsioBus(boost::asio::io_context& io) : io_(io), fd_(io), timer_(io) {}

AsioBus::~AsioBus() {
  alive_.reset();
  close();
}

std::error_code AsioBus::open(std::string& detail) {
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  if (r < 0) {
    detail = "cannot connect to the system bus: " + std::generic_category().message(-r);
    return {-r, std::generic_category()};
  }
  bus_.reset(raw);
  int fd = sd_bus_get_fd(bus_.get());
  boost::system::error_code aec;
  if (fd >= 0) fd_.assign(fd, aec);
  if (fd < 0 || aec) {
    int e = fd < 0 ? -fd : EIO;
    close();
    detail = "cannot use the system bus connection: " + std::generic_category().message(e);
    return {e, std::generic_category()};
  }
  ++gen_;
  return {};
}

void AsioBus::close() {
  ++gen_;
  readArmed_ = writeArmed_ = false;
  boost::system::error_code ignored;
  timer_.cancel();
  if (fd_.is_open()) {
    fd_.cancel(ignored);
    fd_.release();  // sd-bus owns the descriptor and closes it itself
  }
  bus_.reset();
}

void AsioBus::broken(int r) {
  if (onBroken_) onBroken_(r);
}

void AsioBus::arm() {
  if (!bus_) return;
  int events = sd_bus_get_events(bus_.get());
  if (events < 0) {
    broken(events);
    return;
  }
  auto handler = [this, weak = std::weak_ptr<char>(alive_), gen = gen_](bool* armed) {
    return [this, weak, gen, armed](const boost::system::error_code& ec) {
      if (weak.expired() || gen != gen_) return;
      *armed = false;
      if (!ec) process();
    };
  };
  if ((events & POLLIN) && !readArmed_) {
    readArmed_ = true;
    fd_.async_wait(boost::asio::posix::descriptor_base::wait_read, handler(&readArmed_));
  }
  if ((events & POLLOUT) && !writeArmed_) {
    writeArmed_ = true;
    fd_.async_wait(boost::asio::posix::descriptor_base::wait_write, handler(&writeArmed_));
  }
  std::uint64_t until = 0;
  if (sd_bus_get_timeout(bus_.get(), &until) >= 0 && until != UINT64_MAX) {
    // sd-bus answers in CLOCK_MONOTONIC microseconds, which is steady_clock's epoch.
    timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(until)))));
    timer_.async_wait([this, weak = std::weak_ptr<char>(alive_), gen = gen_](const boost::system::error_code& ec) {
      if (weak.expired() || ec || gen != gen_) return;
      process();
    });
  } else {
    timer_.cancel();
  }
}

void AsioBus::process() {
  for (;;) {
    if (!bus_) return;  // a callback closed the connection
    int r = sd_bus_process(bus_.get(), nullptr);
    if (r < 0) {
      broken(r);
      return;
    }
    if (r == 0) break;
  }
  arm();
}

bool AsioBus::waitReady(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int r = sd_bus_is_ready(bus_.get());
    if (r > 0) return true;
    if (r < 0) return false;
    r = sd_bus_process(bus_.get(), nullptr);
    if (r < 0) return false;
    if (r > 0) continue;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
    if (sd_bus_wait(bus_.get(), static_cast<std::uint64_t>(std::max<decltype(left)>(left, 1))) < 0) return false;
  }
}

}  // namespace ipopsec
