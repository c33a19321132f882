-- wrk script: GET RPATH with a Range of RLEN bytes at a random offset in
-- a file of RSIZE bytes (environment variables).
local size = tonumber(os.getenv("RSIZE"))
local len = tonumber(os.getenv("RLEN"))
local path = os.getenv("RPATH")
math.randomseed(os.time())
request = function()
  if len == 0 then
    return wrk.format("GET", path)
  end
  local off = math.random(0, size - len - 1)
  return wrk.format("GET", path, {["Range"] = "bytes=" .. off .. "-" .. (off + len - 1)})
end
