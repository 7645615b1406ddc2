#include "gateway/reactor_group.h"

#include <unistd.h>

#include <algorithm>

#include "gateway/reactor.h"
#include "metrics/thread_names.h"

namespace flux {

ReactorGroup::ReactorGroup(const Options& options) : options_(options) {}

// Threads first: a reactor must not go while another may still post to it.
ReactorGroup::~ReactorGroup() {
  request_shutdown();
  join();
}

unsigned ReactorGroup::resolve_count(unsigned requested) {
  if (requested > 0) return requested;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<unsigned>(online) : 1;
}

bool ReactorGroup::listen(std::string& error) {
  const unsigned count = resolve_count(options_.reactors);
  const bool reuse_port = count > 1;
  // --replay-memory bounds the whole server: each reactor gets its share.
  Options per_reactor = options_;
  per_reactor.replay_memory = options_.replay_memory / count;
  per_reactor.max_pending_total = std::max<uint64_t>(1, options_.max_pending_total / count);
  uint16_t port = options_.port;
  for (unsigned i = 0; i < count; ++i) {
    reactors_.push_back(std::make_unique<Reactor>(per_reactor, i, mesh_));
    mesh_.members.push_back(reactors_.back().get());
    if (!reactors_.back()->listen(port, reuse_port, error)) return false;
    port = reactors_.back()->port();  // the others join the port the first one got
  }
  port_ = port;
  return true;
}

void ReactorGroup::start() {
  for (auto& reactor : reactors_)
    threads_.emplace_back([r = reactor.get()] {
      name_this_thread("flux-reactor-" + r->label());
      r->run();
    });
}

void ReactorGroup::request_shutdown() noexcept {
  for (auto& reactor : reactors_) reactor->request_shutdown();
}

void ReactorGroup::join() {
  for (auto& thread : threads_)
    if (thread.joinable()) thread.join();
}

}  // namespace flux
