package v1alpha1

// Condition types. Every kind has Ready, whose True is always good, so that
// `kubectl wait --for=condition=Ready` works on all three.
const (
	// ConditionReady summarises an object. True: the object is valid and
	// everything it stands for is in place. False: the reason says what is
	// missing or wrong. Unknown: the operator has not finished reconciling.
	ConditionReady = "Ready"

	// ConditionActive (agreements). True: the agreement admits requests and
	// access granted under it is held. False: Pending, Suspended, Expired or Terminating.
	ConditionActive = "Active"

	// ConditionEntitlementsExhausted (agreements). True: at least one
	// entitlement is fully used, so further requests for it are denied.
	// This is informational; True is not a fault.
	ConditionEntitlementsExhausted = "EntitlementsExhausted"

	// ConditionApproved (requests). True: the request was approved, by the
	// operator (automatic approval) or by a provider through the status
	// subresource (manual approval).
	ConditionApproved = "Approved"

	// ConditionDenied (requests). True: the request was refused, at admission
	// by the operator or by a provider. Final.
	ConditionDenied = "Denied"

	// ConditionFulfilled (requests). True: the grant, delivery or action is complete.
	ConditionFulfilled = "Fulfilled"

	// ConditionAccessVerified (resource requests). True: a SubjectAccessReview
	// confirmed every consumer subject can use the granted namespace.
	ConditionAccessVerified = "AccessVerified"

	// ConditionTransferred (goods requests). True: copies of every goods source
	// are in the request's namespace. False: not delivered yet, or the delivery
	// was returned (rejected, past the acceptance deadline, or the agreement ended).
	ConditionTransferred = "Transferred"

	// ConditionAccepted (goods requests). True: the consumer accepted the goods
	// (or acceptance is implicit, or the deadline policy accepted them): the
	// operator let go of the copies, which the consumer now owns. False: the
	// goods wait for the consumer's decision, or were returned.
	//
	// For goods, Ready is True once the goods are accepted. While delivered goods
	// wait for the consumer's decision, Ready is False with reason
	// AwaitingAcceptance: the request is not finished until the consumer owns
	// them, so `kubectl wait --for=condition=Ready` waits for the decision.
	ConditionAccepted = "Accepted"

	// ConditionStalled (all kinds). True: the object reached a final outcome
	// that is not what was asked for (a denied or failed request, goods
	// returned at the deadline, an expired agreement), or it waits for
	// something only a person can fix (a missing ClusterRole or goods source,
	// access denied by an authorizer). Reason and message are the Ready
	// condition's. Absent otherwise. kstatus, and so Flux, read Stalled=True as
	// Failed, so a health check fails at once instead of at its timeout.
	ConditionStalled = "Stalled"

	// ConditionWithinServiceLevel (requests). True: the request met, or is on
	// track to meet, every target of its agreement's serviceLevels. False: it
	// missed one; the message gives the figures. Absent when the agreement
	// sets no targets or the request is not measured. Informational: it does
	// not change Ready.
	ConditionWithinServiceLevel = "WithinServiceLevel"

	// ConditionServiceLevelsMet (agreements). True: the share of measured
	// requests that met their targets over the window is at least the
	// objective. False: it is below. Absent when the agreement sets no
	// targets. Informational: it does not change Ready.
	ConditionServiceLevelsMet = "ServiceLevelsMet"

	// ConditionExpiringSoon (agreements). True: the agreement ends within
	// spec.renewBefore; renew it (extend spec.validUntil or set
	// spec.autoRenew) to keep access without interruption. False: the end is
	// further away, the agreement renews itself, or it has expired. Absent
	// when the agreement sets no renewBefore. Informational: it does not
	// change Ready.
	ConditionExpiringSoon = "ExpiringSoon"
)

// Condition reasons. Each is CamelCase and documented with what a user can do about it.
const (
	// ReasonTargetsMet: the request met every target that applies to it.
	ReasonTargetsMet = "TargetsMet"
	// ReasonOnTrack: the request is open and has not missed a target yet; the
	// message says when each is due.
	ReasonOnTrack = "OnTrack"
	// ReasonTargetBreached: the request missed a target (or is open past it).
	// A provider should look at why it took so long; a breach is final.
	ReasonTargetBreached = "TargetBreached"
	// ReasonObjectiveMet: compliance over the window is at least the objective.
	ReasonObjectiveMet = "ObjectiveMet"
	// ReasonObjectiveMissed: compliance over the window is below the
	// objective; status.serviceLevels.recentBreaches names the requests.
	ReasonObjectiveMissed = "ObjectiveMissed"
	// ReasonNoneMeasured: no request in the window has a verdict yet.
	ReasonNoneMeasured = "NoneMeasured"

	// ReasonReconciling: the operator is working on the object.
	ReasonReconciling = "Reconciling"
	// ReasonValid: the offering's references exist and are allowed.
	ReasonValid = "Valid"
	// ReasonClusterRoleNotFound: an offering names a ClusterRole that does not
	// exist. Create it or fix the name.
	ReasonClusterRoleNotFound = "ClusterRoleNotFound"
	// ReasonClusterRoleForbidden: an offering names a ClusterRole the operator
	// may not grant (cluster-admin, escalate/bind/impersonate or wildcard
	// permissions, or not allowed). Allow it with --allowed-cluster-roles or the
	// service.offering.dev/grantable label, or choose a narrower role.
	ReasonClusterRoleForbidden = "ClusterRoleForbidden"
	// ReasonGoodsSourceNotFound: a goods source does not exist in the provider
	// namespace. Create it or fix the name.
	ReasonGoodsSourceNotFound = "GoodsSourceNotFound"
	// ReasonProviderNamespaceForbidden: the operator may not use the offering's
	// provider namespace: it is the operator's own (which holds the operator's
	// credentials), a namespace the operator granted to a consumer, or a
	// cluster admin has not marked it as a provider namespace (the label
	// service.offering.dev/provider-namespace=true, or the --provider-namespaces
	// flag). Goods would be read from it and action Jobs run with its
	// ServiceAccounts. Use a marked namespace of the provider's, or have a
	// cluster admin mark it. On a request: the operator
	// refused to read a goods source or start an action's Job there; nothing
	// was read or created, and nothing delivered is removed. The request waits.
	ReasonProviderNamespaceForbidden = "ProviderNamespaceForbidden"
	// ReasonProviderNamespaceNotFound: the offering's provider namespace does not exist.
	ReasonProviderNamespaceNotFound = "ProviderNamespaceNotFound"

	// ReasonOfferingNotFound: the agreement's offering does not exist. Create it or fix spec.offering.
	ReasonOfferingNotFound = "OfferingNotFound"
	// ReasonRevisionNotFound: the agreement is Pinned to a revision of its
	// offering that does not exist (never made, or collected). Set
	// spec.revision to one that kubectl get serviceofferingrevisions lists.
	ReasonRevisionNotFound = "RevisionNotFound"
	// ReasonOfferingNotReady: the agreement's offering is not Ready; see its conditions.
	ReasonOfferingNotReady = "OfferingNotReady"
	// ReasonEntitlementUnknownItem: an entitlement names an item the offering does not have.
	ReasonEntitlementUnknownItem = "UnknownItem"
	// ReasonNotYetValid: validFrom is in the future; the agreement becomes Active then.
	ReasonNotYetValid = "NotYetValid"
	// ReasonActive: the agreement is in force.
	ReasonActive = "Active"
	// ReasonSuspended: spec.suspended is true. Set it to false to restore access.
	ReasonSuspended = "Suspended"
	// ReasonExpired: validUntil has passed. Extend it to restore access.
	ReasonExpired = "Expired"
	// ReasonRenewalDue (ExpiringSoon=True): the agreement ends within
	// spec.renewBefore. Extend spec.validUntil or set spec.autoRenew.
	ReasonRenewalDue = "RenewalDue"
	// ReasonNotDue (ExpiringSoon=False): the end is further away than spec.renewBefore.
	ReasonNotDue = "NotDue"
	// ReasonAutoRenews (ExpiringSoon=False): spec.autoRenew renews the agreement at its end.
	ReasonAutoRenews = "AutoRenews"
	// ReasonTerminating: the agreement is being deleted.
	ReasonTerminating = "Terminating"
	// ReasonExhausted: an entitlement is fully used.
	ReasonExhausted = "Exhausted"
	// ReasonAvailable: every entitlement has room left.
	ReasonAvailable = "Available"

	// ReasonAgreementNotFound: the request names an agreement that does not
	// exist in its namespace. The request waits for it.
	ReasonAgreementNotFound = "AgreementNotFound"
	// ReasonAgreementNotActive: the agreement is not Active (Pending, Suspended,
	// Expired). The request waits, or its access is revoked.
	ReasonAgreementNotActive = "AgreementNotActive"
	// ReasonItemNotEntitled: the agreement does not include the requested item. Final.
	ReasonItemNotEntitled = "ItemNotEntitled"
	// ReasonItemNotOffered: the offering does not have the requested item.
	// Final for a new request (Denied); a granted request keeps its grant, on
	// the terms of the revision it was granted under, until the item is back
	// or the request is deleted.
	ReasonItemNotOffered = "ItemNotOffered"
	// ReasonEntitlementExhausted: the agreement's entitlement for the item is
	// used up. Final; release a grant and create a new request.
	ReasonEntitlementExhausted = "EntitlementExhausted"
	// ReasonRequestedNameNotAllowed: the request asks for a namespace name but the item does not allow it. Final.
	ReasonRequestedNameNotAllowed = "RequestedNameNotAllowed"
	// ReasonPlanNotAllowed: the request names a plan its item does not have
	// or its agreement does not allow. Final for a new request (Denied); a
	// granted request keeps its current plan until the plan is changed back
	// or allowed.
	ReasonPlanNotAllowed = "PlanNotAllowed"
	// ReasonPlanChangeNotAllowed: the granted plan's upgradesTo does not
	// include the requested plan, or the revision the agreement moved to
	// would grant another namespace; the request keeps its current terms.
	ReasonPlanChangeNotAllowed = "PlanChangeNotAllowed"
	// ReasonDowngradeBlocked: the granted namespace uses more than the
	// requested plan's quota (or that of the revision the agreement moved to)
	// allows; the request keeps its current terms and changes once usage has
	// dropped.
	ReasonDowngradeBlocked = "DowngradeBlocked"
	// ReasonAutoApproved: the agreement approves requests automatically.
	ReasonAutoApproved = "AutoApproved"
	// ReasonAwaitingApproval: the agreement needs a provider to approve the request.
	ReasonAwaitingApproval = "AwaitingApproval"
	// ReasonApprovalSuperseded: the request was approved under another
	// ServiceAgreement of the same name (deleted since) or automatically under
	// an agreement that now requires a person's approval; the approval no
	// longer holds and a provider must approve again.
	ReasonApprovalSuperseded = "ApprovalSuperseded"
	// ReasonDeniedByProvider: a provider denied the request.
	ReasonDeniedByProvider = "DeniedByProvider"
	// ReasonProvisioning: the grant is being created.
	ReasonProvisioning = "Provisioning"
	// ReasonGranted: access is granted.
	ReasonGranted = "Granted"
	// ReasonNamespaceConflict: the namespace to grant exists and was not created
	// by the operator for this request; it is never adopted. Final.
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonNamespaceTerminating: the namespace to grant is still being deleted; the request waits.
	ReasonNamespaceTerminating = "NamespaceTerminating"
	// ReasonGrantFailed: creating a granted object failed; the operator retries.
	ReasonGrantFailed = "GrantFailed"
	// ReasonVerified: every subject can use the granted namespace.
	ReasonVerified = "Verified"
	// ReasonAccessDenied: a subject cannot use the granted namespace although
	// its RoleBindings exist (an authorizer or webhook denies it).
	ReasonAccessDenied = "AccessDenied"
	// ReasonRevoked: access was revoked because the agreement is not Active.
	ReasonRevoked = "Revoked"
	// ReasonGracePeriod: the agreement expired and access is revoked, but the
	// granted namespace and its data are kept for the item's gracePeriod
	// (status.grant.retainedUntil). Renew the agreement before then to get
	// access to the same namespace back; after it, the namespace is deleted.
	ReasonGracePeriod = "GracePeriod"
	// ReasonDelivered: the goods were copied into the request's namespace.
	ReasonDelivered = "Delivered"
	// ReasonAwaitingAcceptance: the goods are delivered and wait for the
	// consumer's decision: set spec.goods.decision to Accept or Reject.
	ReasonAwaitingAcceptance = "AwaitingAcceptance"
	// ReasonAcceptedByConsumer: the consumer accepted the goods (spec.goods.decision: Accept).
	ReasonAcceptedByConsumer = "AcceptedByConsumer"
	// ReasonAcceptedImplicitly: the offering's goods need no acceptance
	// (acceptance: Implicit); delivery is acceptance.
	ReasonAcceptedImplicitly = "AcceptedImplicitly"
	// ReasonRejectedByConsumer: the consumer rejected the goods
	// (spec.goods.decision: Reject); the copies were removed and the
	// entitlement given back. Final.
	ReasonRejectedByConsumer = "RejectedByConsumer"
	// ReasonAcceptanceDeadlinePassed: the consumer did not decide by the
	// acceptance deadline; the item's deadlinePolicy accepted or returned the goods.
	ReasonAcceptanceDeadlinePassed = "AcceptanceDeadlinePassed"
	// ReasonSourceNotFound: a goods source does not exist in the provider
	// namespace, so the goods cannot be delivered. The request waits; the
	// provider must create it.
	ReasonSourceNotFound = "SourceNotFound"
	// ReasonSourceNotAllowed: a goods source cannot be copied (a ServiceAccount
	// token Secret). The request waits; the provider must fix the offering.
	ReasonSourceNotAllowed = "SourceNotAllowed"
	// ReasonCopyConflict: an object with the name of a copy already exists in
	// the request's namespace and was not delivered for this request; it is
	// never overwritten. The request waits until it is renamed or removed.
	ReasonCopyConflict = "CopyConflict"
	// ReasonDeliveryFailed: writing a copy failed; the operator retries.
	ReasonDeliveryFailed = "DeliveryFailed"

	// ReasonInvalidParameters: the action request passes a parameter the action
	// does not declare, leaves out a required one, or passes a secret
	// parameter as a plain value (or a plain one from a Secret). Nothing ran
	// and the entitlement was given back. Final; create a corrected request.
	ReasonInvalidParameters = "InvalidParameters"
	// ReasonSecretParameterNotFound: a secret parameter names a Secret or key
	// that does not exist in the request's namespace. The request waits; create it.
	ReasonSecretParameterNotFound = "SecretParameterNotFound"
	// ReasonSecretNotReadable: the request's creator (spec.creator) may not
	// read a Secret named in spec.action.secretParameters, or the request
	// records no creator the operator can trust (created without the
	// admission policies of config/admission). The operator read nothing and
	// the request waits: grant the creator get on the Secret, or have someone
	// who may read it create the request.
	ReasonSecretNotReadable = "SecretNotReadable"
	// ReasonActionStartFailed: creating the action's Job or the copy of its
	// secret parameters failed; the operator retries. The message carries only
	// the API error's reason.
	ReasonActionStartFailed = "ActionStartFailed"
	// ReasonActionRunning: the action's Job is running in the provider namespace.
	ReasonActionRunning = "ActionRunning"
	// ReasonActionSucceeded: the action completed (its Job completed, or a
	// provider marked it done).
	ReasonActionSucceeded = "ActionSucceeded"
	// ReasonActionFailed: the action failed: its Job exhausted its retries
	// (backoffLimit) or was deleted before it finished, or a provider set
	// Fulfilled=False with this reason on a manual action. Final; the
	// entitlement stays used, as the action was performed.
	ReasonActionFailed = "ActionFailed"
	// ReasonActionTimedOut: the action's Job ran longer than the action's
	// timeout (activeDeadlineSeconds). Final; the entitlement stays used.
	ReasonActionTimedOut = "ActionTimedOut"
	// ReasonAwaitingProvider: a manual action waits for a provider to perform
	// it and mark it done: add the condition Fulfilled=True (or Fulfilled=False
	// with reason ActionFailed) through the status subresource.
	ReasonAwaitingProvider = "AwaitingProvider"
	// ReasonActionJobConflict: a Job with the action's derived name exists in
	// the provider namespace and was not created for this request; it is never
	// adopted. The request waits until it is removed.
	ReasonActionJobConflict = "ActionJobConflict"
	// ReasonUnsafeParameterExpansion: the action's Job template references a
	// parameter as $(NAME) in its command or args, where the kubelet would
	// paste the consumer's value into the command line (and a program may run
	// it as code). Parameters reach the Job only as environment variables: read
	// "$NAME" from the environment instead. On an offering: Ready=False. On a
	// request: nothing runs; it waits until the provider fixes the offering.
	ReasonUnsafeParameterExpansion = "UnsafeParameterExpansion"
	// ReasonActionServiceAccountForbidden: the action's Job would run as a
	// ServiceAccount a cluster admin has not allowed for action Jobs (the
	// provider namespace's service.offering.dev/action-service-accounts
	// annotation, or --action-service-accounts). On an offering: Ready=False.
	// On a request: nothing runs; it waits.
	ReasonActionServiceAccountForbidden = "ActionServiceAccountForbidden"

	// ReasonUnsupportedItemKind: this version of the operator does not fulfil this kind of item yet.
	ReasonUnsupportedItemKind = "UnsupportedItemKind"
)
