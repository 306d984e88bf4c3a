"""The ledger's one atomic step per campaign, in Lua: remember each notice id and add its spend.

Redis runs a script without interleaving other commands, so the ``SET NX`` of a
notice id and the ``HINCRBY`` of its spend happen together or not at all: a
duplicate, a retried flush or a replica's copy of the same notice finds its id
already set and adds nothing. The claims made just before, outside the
campaign's slot (:mod:`collectors.banker.claims`), come in as a verdict per
entry: a notice whose id another campaign owns, or whose price token another
auction owns, is not spent but flagged, once, in the campaign's total. The
campaign's currency is its budget's ``currency`` or the configured default,
never a notice's: a notice in another currency is flagged the same way.
"""

# KEYS: total, budget, exhausted flags, line-item set, then the keys the ARGV
# entries point at by index. ARGV: id_ttl, day_ttl, now, default currency, the
# days touched (count, then key index and day pairs), the line items (count,
# then names), the entries (count, then 8 values each: id key, day key,
# line-item key and line-item day key indexes (0: none), spend, late flag,
# currency, verdict: 0 spend, 1 id owned by another campaign, 2 token reused).
# Sums go to HINCRBY through string.format('%d'): a Lua number past 1e14 would
# print as 1e+14. Lua numbers are doubles, exact to 2^53 micro-units (9e9 units).
APPLY = """
local id_ttl, day_ttl, now = ARGV[1], ARGV[2], ARGV[3]
local total_k, budget_k, flag_k, lis_k = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local caps = redis.call('HMGET', budget_k, 'total_micros', 'daily_micros', 'currency')
local total_cap, daily_cap = tonumber(caps[1]), tonumber(caps[2])
-- Configured (the budget's own, else the default); a campaign spent before currencies
-- were configured keeps the one its ledger is in, so an upgrade refuses none of its notices.
local currency = caps[3] or redis.call('HGET', total_k, 'currency') or ARGV[4]
local total_before = tonumber(redis.call('HGET', total_k, 'spend_micros')) or 0
local pos = 5
local days, day_before = {}, {}
for _ = 1, tonumber(ARGV[pos]) do
  local k = tonumber(ARGV[pos + 1])
  days[k] = ARGV[pos + 2]
  day_before[k] = tonumber(redis.call('HGET', KEYS[k], 'spend_micros')) or 0
  pos = pos + 2
end
pos = pos + 1
for _ = 1, tonumber(ARGV[pos]) do
  redis.call('SADD', lis_k, ARGV[pos + 1])
  pos = pos + 1
end
pos = pos + 1
-- Sum per key in Lua, then one HINCRBY per key and counter: a flush of 500
-- notices costs about 500 SETs, not 5,500 calls.
local sums, expire = {}, {}
local function add(k, amount, late)
  local s = sums[k]
  if not s then
    s = {0, 0, 0, 0}
    sums[k] = s
  end
  s[1] = s[1] + amount
  s[2] = s[2] + 1
  if late then
    s[3] = s[3] + 1
    s[4] = s[4] + amount
  end
end
local applied, dupes = 0, 0
-- Flagged notices, by verdict: 1 other campaign, 2 token reused, 3 other currency.
local flagged = {0, 0, 0}
for _ = 1, tonumber(ARGV[pos]) do
  local id_k, day_i = KEYS[tonumber(ARGV[pos + 1])], tonumber(ARGV[pos + 2])
  local li_i, liday_i = tonumber(ARGV[pos + 3]), tonumber(ARGV[pos + 4])
  local amount, late, cur = tonumber(ARGV[pos + 5]), ARGV[pos + 6] == '1', ARGV[pos + 7]
  local verdict = tonumber(ARGV[pos + 8])
  pos = pos + 8
  if verdict == 0 and cur ~= currency then verdict = 3 end
  if not redis.call('SET', id_k, verdict == 0 and '1' or 'flagged', 'NX', 'EX', id_ttl) then
    dupes = dupes + 1
  elseif verdict > 0 then
    flagged[verdict] = flagged[verdict] + 1
  else
    applied = applied + 1
    add(1, amount, late)
    add(day_i, amount, late)
    expire[day_i] = true
    if li_i > 0 then
      add(li_i, amount, late)
      add(liday_i, amount, late)
      expire[liday_i] = true
    end
  end
end
local flag_names = {'other_campaign_events', 'token_reused_events', 'currency_refused_events'}
for v = 1, 3 do
  if flagged[v] > 0 then redis.call('HINCRBY', total_k, flag_names[v], flagged[v]) end
end
if applied > 0 then redis.call('HSET', total_k, 'currency', currency) end
local names = {'spend_micros', 'events', 'late_events', 'late_micros'}
for k, s in pairs(sums) do
  for f = 1, 4 do
    if s[f] ~= 0 then redis.call('HINCRBY', KEYS[k], names[f], string.format('%d', s[f])) end
  end
  if expire[k] then redis.call('EXPIRE', KEYS[k], day_ttl) end
end
local over_total, over_daily, out = 0, 0, {}
local total_after = total_before + (sums[1] and sums[1][1] or 0)
if total_cap then
  over_total = math.max(0, total_after - total_cap) - math.max(0, total_before - total_cap)
  if total_after >= total_cap and redis.call('HSETNX', flag_k, 'total', now) == 1 then
    table.insert(out, 'total')
    table.insert(out, string.format('%d', total_cap))
    table.insert(out, string.format('%d', total_after))
  end
end
if daily_cap then
  for k, day in pairs(days) do
    local before = day_before[k]
    local after = before + (sums[k] and sums[k][1] or 0)
    over_daily = over_daily + math.max(0, after - daily_cap) - math.max(0, before - daily_cap)
    if after >= daily_cap and redis.call('HSETNX', flag_k, 'day:' .. day, now) == 1 then
      table.insert(out, 'day:' .. day)
      table.insert(out, string.format('%d', daily_cap))
      table.insert(out, string.format('%d', after))
    end
  end
end
return {applied, dupes, flagged[3], flagged[1], flagged[2], string.format('%d', over_total),
        string.format('%d', over_daily), currency, unpack(out)}
"""
