#include "gateway/reactor_handle.h"

#include <algorithm>
#include <memory>

#include "gateway/log.h"

namespace flux {
namespace {

// Rows built per loop turn for a /connections listing: about 5 ms of work
// (a TCP_INFO call and a peer string each), so a listing of 19,000
// connections takes ~19 turns and never holds the loop near the stall
// threshold; other work runs between the slices.
constexpr size_t kListingSlice = 1024;

struct Listing {
  Reactor* reactor;
  std::function<void(std::vector<ConnectionInfo>)> done;
  std::vector<ConnectionInfo> rows;
  size_t next = 0;
};

void list_slice(const std::shared_ptr<Listing>& listing) {
  Reactor& reactor = *listing->reactor;
  std::vector<ConnectionInfo> slice = reactor.list_connections(listing->next, kListingSlice);
  listing->rows.insert(listing->rows.end(), std::make_move_iterator(slice.begin()),
                       std::make_move_iterator(slice.end()));
  listing->next += kListingSlice;
  if (listing->next < reactor.connection_count()) {
    reactor.post_next_turn([listing] { list_slice(listing); });
    return;
  }
  // A close between slices moves the last connection into the freed slot:
  // it may have been listed twice (never a connection open throughout missed
  // unless it moved from an unvisited slot into a visited one).
  std::vector<ConnectionInfo>& rows = listing->rows;
  std::sort(rows.begin(), rows.end(),
            [](const ConnectionInfo& a, const ConnectionInfo& b) { return a.id < b.id; });
  rows.erase(
      std::unique(rows.begin(), rows.end(),
                  [](const ConnectionInfo& a, const ConnectionInfo& b) { return a.id == b.id; }),
      rows.end());
  listing->done(std::move(rows));
}

}  // namespace

ReactorHandle metrics_handle(Reactor& reactor) {
  Reactor* r = &reactor;
  ReactorHandle handle;
  handle.label = r->label();
  handle.metrics = &r->metrics();
  handle.list_connections = [r](std::function<void(std::vector<ConnectionInfo>)> done) {
    auto listing = std::make_shared<Listing>(Listing{r, std::move(done), {}, 0});
    r->post([listing] { list_slice(listing); });
  };
  handle.watchdog = &r->watchdog_metrics();
  handle.describe_connection = [r](uint64_t id, std::function<void(std::string)> done) {
    r->post([r, id, done = std::move(done)] { done(r->connection_peer(id)); });
  };
  return handle;
}

void log_stall(const StallRecord& s) {
  const std::string_view activity = to_string(s.activity);
  const double ms = s.duration_seconds * 1e3;
  if (s.connection_id == 0) {
    log_event(LogLevel::kWarn, "loop-stall",
              {{"reactor", std::string_view(s.reactor)},
               {"activity", activity},
               {"duration_seconds", s.duration_seconds},
               {"start_unix_seconds", s.start_unix_seconds}},
              "loop stall: reactor %s busy %.1f ms in %.*s", s.reactor.c_str(), ms,
              int(activity.size()), activity.data());
    return;
  }
  const std::string peer = s.peer.empty() ? "gone" : s.peer;
  log_event(LogLevel::kWarn, "loop-stall",
            {{"reactor", std::string_view(s.reactor)},
             {"activity", activity},
             {"duration_seconds", s.duration_seconds},
             {"start_unix_seconds", s.start_unix_seconds},
             {"connection", s.connection_id},
             {"peer", std::string_view(peer)}},
            "loop stall: reactor %s busy %.1f ms in %.*s of connection %llu (peer %s)",
            s.reactor.c_str(), ms, int(activity.size()), activity.data(),
            static_cast<unsigned long long>(s.connection_id), peer.c_str());
}

}  // namespace flux
