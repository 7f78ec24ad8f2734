-- Argo CD health check for offering-operator's kinds in service.offering.dev:
-- ServiceOffering, ServiceAgreement and ConsumptionRequest (one script, under the three argocd-cm
-- keys resource.customizations.health.service.offering.dev_<Kind>).
-- Runs in Argo CD's default Lua sandbox: base and table libraries only (no string library).
-- Every kind:
--   Progressing  no status yet, observedGeneration behind, no Ready condition or Ready=Unknown
--   Healthy      Ready=True and the current generation observed, unless the phase says otherwise below
--   Degraded     Ready=False (ServiceOffering: a referenced ClusterRole, provider namespace or goods
--                source is missing or not allowed; ServiceAgreement: an entitlement names an unknown item)
-- ServiceAgreement phases:
--   Progressing  Pending (offering missing or not Ready, before validFrom) and Terminating
--   Suspended    Suspended (spec.suspended is true: access is revoked until it is false again)
--   Degraded     Expired
-- ConsumptionRequest phases (Ready=True in Fulfilled, or Accepted goods):
--   Progressing  Pending, AwaitingApproval, Provisioning, Delivered (and Fulfilled while drift is repaired),
--                with Ready=False for a reason that will move on by itself
--   Suspended    Revoked: the agreement is suspended or ended, access was revoked
--   Healthy      Rejected with reason RejectedByConsumer (the consumer's own decision was carried out)
--   Degraded     Denied and Failed; Rejected because the acceptance deadline passed; and a waiting
--                request whose Ready reason needs a person (see needsAttention below)
-- The message is the Ready condition's message.
local hs = { status = "Progressing", message = "Waiting for offering-operator to report status" }
-- Ready=False reasons of a request that is not final but will not move on by itself.
local needsAttention = {
  AccessDenied = true,        -- RoleBindings exist but an authorizer or webhook denies the subjects
  CopyConflict = true,        -- an object with the name of a goods copy exists and is never overwritten
  SourceNotFound = true,      -- a goods source is missing in the provider namespace
  SourceNotAllowed = true,    -- a goods source cannot be copied (ServiceAccount token Secret)
  ItemNotOffered = true,      -- the offering no longer has the requested item
  UnsupportedItemKind = true, -- this operator version does not fulfil the item kind
  UnsafeParameterExpansion = true,   -- the action's Job template pastes a parameter into code
  ProviderNamespaceForbidden = true, -- the operator may not use the offering's provider namespace
  ProviderNamespaceNotFound = true,  -- the offering's provider namespace does not exist
  ActionServiceAccountForbidden = true, -- the action's Job would run as a ServiceAccount no cluster admin allowed
  SecretNotReadable = true,          -- the request's creator may not read a secret parameter's Secret
  RevisionNotFound = true,           -- the agreement is pinned to a revision of the offering that does not exist
  PlanNotAllowed = true,             -- a plan change names a plan the item lacks or the agreement does not allow
  PlanChangeNotAllowed = true,       -- the granted plan's upgradesTo does not lead to the requested plan
  ClusterNotAllowed = true,          -- the request names a member cluster its item's placement does not allow
}
-- The health of a phase that decides by itself, per kind; other phases follow Ready.
local byPhase = {
  ServiceAgreement = { Suspended = "Suspended", Expired = "Degraded", Pending = "Progressing", Terminating = "Progressing" },
  ConsumptionRequest = { Revoked = "Suspended", Denied = "Degraded", Failed = "Degraded" },
}
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
local phases = byPhase[obj.kind] or {}
if phase ~= nil and phases[phase] ~= nil then
  hs.status = phases[phase]
elseif obj.kind == "ConsumptionRequest" and phase == "Rejected" then
  if ready.reason == "RejectedByConsumer" then
    hs.status = "Healthy"
  else
    hs.status = "Degraded"
  end
elseif ready.status == "True" then
  hs.status = "Healthy"
elseif obj.kind ~= "ConsumptionRequest" or needsAttention[ready.reason] then
  hs.status = "Degraded"
end
return hs
