-- wrk script: inclusion and consistency proofs for random positions in a log of SIZE entries.
-- SIZE comes from the environment (the tree size of the latest signed head).
local size = tonumber(os.getenv("SIZE") or "1000")
local kind = os.getenv("PROOF") or "inclusion"
math.randomseed(os.time())
request = function()
  if kind == "consistency" then
    return wrk.format("GET", "/v1/ledger/proofs/consistency?from=" .. math.random(1, size))
  end
  return wrk.format("GET", "/v1/ledger/proofs/inclusion?seq=" .. math.random(0, size - 1))
end
