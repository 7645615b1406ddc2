#include "gateway/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "gateway/log.h"
#include "gateway/loop_clock.h"
#include "metrics/thread_names.h"

namespace flux {
namespace {

std::string with_status(std::string_view state, std::string_view status) {
  std::string message(state);
  if (!status.empty()) message.append("\nSTATUS=").append(status);
  return message;
}

}  // namespace

bool loops_turned_within(const std::vector<const ReactorMetrics*>& reactors,
                         std::chrono::milliseconds bound) noexcept {
  const uint64_t now = monotonic_ns();
  const auto bound_ns = static_cast<uint64_t>(std::chrono::nanoseconds(bound).count());
  for (const ReactorMetrics* m : reactors) {
    const uint64_t last = m->loop.last_turn_monotonic_ns.get();
    if (now > last && now - last > bound_ns) return false;
  }
  return true;
}

ServiceNotifier::ServiceNotifier(std::function<bool()> healthy) : healthy_(std::move(healthy)) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  // The variables stay set: sd_notify reads NOTIFY_SOCKET on every call.
  if (enabled_ && sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0 && usec >= 2)
    interval_ = std::chrono::microseconds(usec / 2);
}

ServiceNotifier::~ServiceNotifier() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServiceNotifier::ready(std::string_view status) {
  if (!enabled_) return;
  notify(with_status("READY=1", status));
  if (interval_.count() > 0 && !thread_.joinable())
    thread_ = std::thread([this] {
      name_this_thread("flux-watchdog");
      watchdog_loop();
    });
}

void ServiceNotifier::stopping(std::string_view status) {
  if (enabled_) notify(with_status("STOPPING=1", status));
}

void ServiceNotifier::notify(std::string_view message) noexcept {
  const std::string text(message);
  const int rc = sd_notify(/*unset_environment=*/0, text.c_str());
  // Logged once: a manager that went away must not flood the log every ping.
  if (rc >= 0 || notify_failed_logged_.exchange(true)) return;
  log_event(LogLevel::kWarn, "notify-failed", {{"error", std::string_view(strerror(-rc))}},
            "sd_notify failed: %s", strerror(-rc));
}

void ServiceNotifier::watchdog_loop() {
  bool withheld = false;
  std::unique_lock lock(mutex_);
  // Absolute deadlines: a slow health check does not stretch the period.
  auto next = std::chrono::steady_clock::now() + interval_;
  while (!wake_.wait_until(lock, next, [this] { return quit_; })) {
    lock.unlock();
    ping_or_withhold(withheld);
    lock.lock();
    next += interval_;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // we were stalled ourselves: no burst
  }
}

void ServiceNotifier::ping_or_withhold(bool& withheld) {
  const bool healthy = healthy_();
  if (healthy) notify("WATCHDOG=1");
  if (healthy == !withheld) return;
  withheld = !healthy;
  if (withheld)
    log_event(LogLevel::kWarn, "watchdog-withheld", {},
              "a reactor is stuck: withholding the systemd watchdog ping");
  else
    log_event(LogLevel::kInfo, "watchdog-resumed", {},
              "every reactor turns again: watchdog pings resumed");
}

}  // namespace flux
