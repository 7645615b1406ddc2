#pragma once
// The Lua scripts the Redis session store runs (gateway/session_store.h).
// Each runs atomically in Redis, so that "check the owner, then write" can
// never interleave with another node's resume: two nodes never own one
// session, and a node that lost a session can never write to it again.
//
// Keys of session <id> (docs/protocol.md, "Session store"):
//   flux:s:<id>  hash  owner    the attachment token of the connection that
//                               holds it (a new one per HELLO and per resume)
//                      channel  the pub/sub channel of the owner's node
//                      seq      data frames counted in the session
//                      state    attached | detached
//   flux:f:<id>  list  the payloads of frames seq-LLEN+1 .. seq, oldest first
//                      (as many as the node keeps: --replay-frames and
//                      --replay-bytes, and --replay-memory under pressure)
// Both expire: a detached session after --resume-window, an attached one
// after a lease its node keeps renewing (so a crashed node's sessions
// expire by themselves).
//
// Thread contract: constants.

#include <array>
#include <string_view>

namespace flux::store_scripts {

// KEYS: hash, list. ARGV: token, channel, ttl_ms.
// A new session, attached to `token`, with no frame yet.
inline constexpr std::string_view kCreate = R"lua(
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'channel', ARGV[2], 'seq', 0,
           'state', 'attached')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
)lua";

// KEYS: hash, list of each session written this loop turn. ARGV: ttl_ms,
// then per session: token, keep, count, n, payload x n. Counts `count` data
// frames, appends the n payloads (none when replay is off) and keeps the
// last `keep` (what the node keeps under the replay bounds). Returns one
// result per session: its new seq, or -1 when `token` no longer owns it
// (taken over or expired): one command for a whole loop turn of frames.
inline constexpr std::string_view kAppend = R"lua(
local out, a, ttl = {}, 2, ARGV[1]
for i = 1, #KEYS, 2 do
  local token, keep, count, n = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], tonumber(ARGV[a + 3])
  local first = a + 4
  a = first + n
  if redis.call('HGET', KEYS[i], 'owner') ~= token then
    out[#out + 1] = -1
  else
    for s = first, first + n - 1, 1000 do
      redis.call('RPUSH', KEYS[i + 1], unpack(ARGV, s, math.min(s + 999, first + n - 1)))
    end
    if keep > 0 then
      redis.call('LTRIM', KEYS[i + 1], -keep, -1)
      redis.call('PEXPIRE', KEYS[i + 1], ttl)
    else
      redis.call('DEL', KEYS[i + 1])
    end
    out[#out + 1] = redis.call('HINCRBY', KEYS[i], 'seq', count)
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return out
)lua";

// KEYS: hash, list. ARGV: token, ttl_ms, state. Renews the owner's lease
// (state "attached") or starts the resume window (state "detached"; ttl 0
// deletes the session). Returns 0 if `token` no longer owns it.
inline constexpr std::string_view kKeep = R"lua(
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
)lua";

// KEYS: hash, list. ARGV: token, channel, last_seq, ttl_ms, id.
// FLUX_RESUME (docs/protocol.md section 8), decided and applied at once:
//   {0}                               session-unknown
//   {1}                               bad-seq (the session is left as it was)
//   {2}                               replay-gap (the session is deleted)
//   {3 or 4, seq, {payloads}, channel}  resumed (4: it was attached, and its
//        holder is told on its node's channel); payloads are the frames
//        after last_seq; channel is the previous owner's.
inline constexpr std::string_view kResume = R"lua(
local h = redis.call('HMGET', KEYS[1], 'seq', 'state', 'owner', 'channel')
if not h[1] then return {0} end
local seq, last = tonumber(h[1]), tonumber(ARGV[3])
if last > seq then return {1} end
local len = redis.call('LLEN', KEYS[2])
local was_attached = h[2] == 'attached'
if last < seq and last < seq - len then
  redis.call('DEL', KEYS[1], KEYS[2])
  if was_attached then redis.call('PUBLISH', h[4], ARGV[5] .. ' ' .. h[3]) end
  return {2}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'channel', ARGV[2], 'state', 'attached')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if was_attached then redis.call('PUBLISH', h[4], ARGV[5] .. ' ' .. h[3]) end
local frames = {}
if last < seq then frames = redis.call('LRANGE', KEYS[2], len - (seq - last), -1) end
return {was_attached and 4 or 3, seq, frames, h[4]}
)lua";

enum Script : unsigned { kCreateScript, kAppendScript, kKeepScript, kResumeScript, kScriptCount };
inline constexpr std::array<std::string_view, kScriptCount> kScripts = {kCreate, kAppend, kKeep,
                                                                        kResume};

}  // namespace flux::store_scripts
