-- Argo CD health check for service.offering.dev/ServiceAgreement (offering-operator).
-- argocd-cm key: resource.customizations.health.service.offering.dev_ServiceAgreement
-- Runs in Argo CD's default Lua sandbox: base and table libraries only (no string library).
--   Healthy      phase Active, Ready=True, current generation observed
--   Progressing  no status yet, observedGeneration behind, no Ready condition or Ready=Unknown,
--                phase Pending (offering missing or not Ready, before validFrom) or Terminating
--   Suspended    phase Suspended (spec.suspended is true: access is revoked until it is false again)
--   Degraded     phase Expired, or Ready=False on an Active agreement (an entitlement names an unknown item)
-- The message is the Ready condition's message.
local hs = { status = "Progressing", message = "Waiting for offering-operator to report status" }
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.message = "Waiting for offering-operator to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  hs.message = "Waiting for the Ready condition"
  return hs
end
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.message = "Waiting for the Ready condition to observe generation " .. tostring(generation)
  return hs
end
hs.message = ready.message or ready.reason or ""
if ready.status ~= "True" and ready.status ~= "False" then
  return hs -- Ready=Unknown: the operator is still reconciling
end
local phase = obj.status.phase
if phase == "Suspended" then
  hs.status = "Suspended"
elseif phase == "Expired" then
  hs.status = "Degraded"
elseif phase == "Pending" or phase == "Terminating" then
  hs.status = "Progressing"
elseif ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
end
return hs
