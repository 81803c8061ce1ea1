--- Task network ports (v0.8.3 task-level `resources { network { port ... } }`
--- with the `port_map` config option): port requests for C's allocator,
--- Docker PortBindings/ExposedPorts and the NOMAD_* port variables
--- (reference §3.6).
local ports = {}


---The key C uses for one port of one task instance.
---@param alloc_id string
---@param task_name string
---@param label string
---@return string
function ports.key(alloc_id, task_name, label)
  return alloc_id .. "/" .. task_name .. "/" .. label
end


---Every port of a task's networks, in jobspec order (reserved first).
---@param task table jobspec task
---@return table[] { label=, static=N|nil, to=N|nil }
function ports.of(task)
  local out = {}
  local res = task.resources or {}
  for _, net in ipairs(res.networks or {}) do
    for _, p in ipairs(net.ports or {}) do
      out[#out + 1] = p
    end
  end
  return out
end


---Port requests (pass 1) for task instances.
---@param instances table[] { alloc_id = , task = jobspec task }
---@return table[] { key, alloc_id, task, label, static }
function ports.requests(instances)
  local out = {}
  for _, inst in ipairs(instances) do
    for _, p in ipairs(ports.of(inst.task)) do
      out[#out + 1] = {
        key = ports.key(inst.alloc_id, inst.task.name, p.label),
        alloc_id = inst.alloc_id,
        task = inst.task.name,
        label = p.label,
        static = p.static,
      }
    end
  end
  return out
end


---Maps a task's ports to Docker bindings and the NOMAD_* variables.
---allocated maps label -> host port (missing: 0, the pass-1 placeholder).
---The container port is port_map[label], else the port's `to`, else the
---host port; every port is published on tcp and udp.
---@param task table jobspec task
---@param port_map table|nil label -> container port
---@param allocated table|nil label -> host port
---@param network_ip string|nil host address the ports bind to
---@return table { env = {}, bindings = {}, exposed = {}, host_ports = {label = port} }
function ports.assign(task, port_map, allocated, network_ip)
  port_map, allocated = port_map or {}, allocated or {}
  local ip = network_ip or "127.0.0.1"
  local out = { env = {}, bindings = {}, exposed = {}, host_ports = {} }
  for _, p in ipairs(ports.of(task)) do
    local label = p.label
    local host_port = allocated[label] or 0
    local mapped = port_map[label]
    if mapped == nil and p.to and p.to ~= 0 then
      mapped = p.to
    end
    local cport = mapped or host_port
    local hp = string.format("%d", host_port)
    local cp = string.format("%d", cport)
    out.host_ports[label] = host_port
    out.env["NOMAD_IP_" .. label] = ip
    out.env["NOMAD_HOST_PORT_" .. label] = hp
    out.env["NOMAD_ADDR_" .. label] = ip .. ":" .. hp
    out.env["NOMAD_PORT_" .. label] = cp
    for _, proto in ipairs({ "tcp", "udp" }) do
      local k = cp .. "/" .. proto
      local list = out.bindings[k] or {}
      list[#list + 1] = { HostIp = ip, HostPort = hp }
      out.bindings[k] = list
      out.exposed[k] = {}
    end
  end
  return out
end


return ports
