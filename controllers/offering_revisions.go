package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Offering revisions: every spec an offering is given is recorded in an
// immutable ServiceOfferingRevision, numbered 1, 2, ... and owned by the
// offering. Agreements with revisionPolicy Pinned are fulfilled from their
// revision's spec (effectiveOffering); the others from the live offering.
// Old revisions are collected beyond Options.RevisionHistory, never one in use.

// DefaultRevisionHistory is how many revisions of an offering are kept, not
// counting those in use, when Options.RevisionHistory is not set.
const DefaultRevisionHistory = 10

// maxRevisionUsage bounds the offering's status.revisions.
const maxRevisionUsage = 32

// revisionName is the name of an offering's revision n: "<offering>-r<n>",
// the offering's part cut and hashed when the whole would be too long.
func revisionName(offering string, n int32) string {
	suffix := "-r" + strconv.Itoa(int(n))
	if len(offering)+len(suffix) <= 253 {
		return offering + suffix
	}
	return derivedName(offering, offering, 253-len(suffix)) + suffix
}

// specHash is the SHA-256 of an offering spec's JSON, in hexadecimal. The
// encoding is deterministic (struct fields in order, map keys sorted).
func specHash(spec *v1alpha1.ServiceOfferingSpec) (string, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// revisionsOf lists the revisions the offering owns, highest number first,
// from r (the cache, or the API server).
func revisionsOf(ctx context.Context, r client.Reader, off *v1alpha1.ServiceOffering, opts ...client.ListOption) ([]v1alpha1.ServiceOfferingRevision, error) {
	var list v1alpha1.ServiceOfferingRevisionList
	if err := r.List(ctx, &list, append(opts, client.MatchingLabels{v1alpha1.LabelOffering: off.Name})...); err != nil {
		return nil, err
	}
	owned := list.Items[:0]
	for _, rev := range list.Items {
		if hasOwnerRef(&rev, off.UID) {
			owned = append(owned, rev)
		}
	}
	slices.SortFunc(owned, func(a, b v1alpha1.ServiceOfferingRevision) int { return int(b.Spec.Revision - a.Spec.Revision) })
	return owned, nil
}

// ensureRevision returns the number of the revision that records the
// offering's current spec, creating it when the newest revision holds
// another spec. A retry after a crash finds the revision it created (read
// live when the cache does not show it), so one spec never makes two
// revisions in a row; a spec that returns to an earlier one is a new revision.
func (r *OfferingReconciler) ensureRevision(ctx context.Context, off *v1alpha1.ServiceOffering) (int32, error) {
	hash, err := specHash(&off.Spec)
	if err != nil {
		return 0, err
	}
	revs, err := revisionsOf(ctx, r.Client, off)
	if err != nil {
		return 0, err
	}
	if len(revs) > 0 && revs[0].Spec.SpecHash == hash && revs[0].Spec.Revision >= off.Status.LatestRevision {
		return revs[0].Spec.Revision, nil
	}
	// The cache may lag behind a revision made before a crash or by another replica.
	if revs, err = revisionsOf(ctx, r.APIReader, off); err != nil {
		return 0, err
	}
	next := off.Status.LatestRevision + 1
	if len(revs) > 0 {
		if revs[0].Spec.SpecHash == hash {
			return revs[0].Spec.Revision, nil
		}
		next = max(next, revs[0].Spec.Revision+1)
	}
	rev := newRevision(off, next, hash)
	if err := ctrl.SetControllerReference(off, rev, r.Scheme()); err != nil {
		return 0, err
	}
	if err := r.Create(ctx, rev); err != nil {
		// AlreadyExists: made meanwhile by another replica; the retry reads it.
		return 0, err
	}
	r.Recorder.Eventf(off, rev, "Normal", "RevisionCreated", "Revise", "recorded the offering's spec as revision %d (%s)", next, rev.Name)
	return next, nil
}

// newRevision is revision n of the offering, holding its current spec.
func newRevision(off *v1alpha1.ServiceOffering, n int32, hash string) *v1alpha1.ServiceOfferingRevision {
	return &v1alpha1.ServiceOfferingRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: revisionName(off.Name, n),
			Labels: map[string]string{
				v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
				v1alpha1.LabelOffering:  off.Name,
			},
		},
		Spec: v1alpha1.ServiceOfferingRevisionSpec{
			Offering:     v1alpha1.OfferingName(off.Name),
			Revision:     n,
			SpecHash:     hash,
			OfferingSpec: *off.Spec.DeepCopy(),
		},
	}
}

// agreementRevision is the revision an agreement is on: its pin, or the
// offering's latest; 0 while the latest is not known.
func agreementRevision(agr *v1alpha1.ServiceAgreement, latest int32) int32 {
	if agr.Spec.RevisionPolicy == v1alpha1.RevisionPolicyPinned {
		return agr.Spec.Revision
	}
	return latest
}

// revisionUsage counts the agreements on each revision, by revision number;
// past maxRevisionUsage revisions, the lowest numbers are left out.
func revisionUsage(agreements []v1alpha1.ServiceAgreement, latest int32) []v1alpha1.RevisionUsage {
	counts := map[int32]int32{}
	for i := range agreements {
		if n := agreementRevision(&agreements[i], latest); n > 0 {
			counts[n]++
		}
	}
	out := make([]v1alpha1.RevisionUsage, 0, len(counts))
	for n, c := range counts {
		out = append(out, v1alpha1.RevisionUsage{Revision: n, Agreements: c})
	}
	slices.SortFunc(out, func(a, b v1alpha1.RevisionUsage) int { return int(a.Revision - b.Revision) })
	if len(out) > maxRevisionUsage {
		out = out[len(out)-maxRevisionUsage:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// collectRevisions deletes the offering's revisions beyond the newest
// Options.RevisionHistory, except the latest and every revision in use: one
// an agreement of the offering pins, or one a request is fulfilled under.
// Agreements and requests are read from the cache: a pin made in the
// moment a revision is collected finds it gone and says so
// (RevisionNotFound); nothing granted is touched.
func (r *OfferingReconciler) collectRevisions(ctx context.Context, off *v1alpha1.ServiceOffering, latest int32) error {
	keep := r.Options.RevisionHistory
	if keep <= 0 {
		keep = DefaultRevisionHistory
	}
	revs, err := revisionsOf(ctx, r.Client, off)
	if err != nil || len(revs) <= keep {
		return err
	}
	inUse, err := r.revisionsInUse(ctx, off, latest)
	if err != nil {
		return err
	}
	for _, rev := range collectable(revs, keep, inUse) {
		if err := deleteWithUID(ctx, r.Client, rev); err != nil {
			return err
		}
		ctrl.LoggerFrom(ctx).Info("collected an old revision", "revision", rev.Name)
	}
	return nil
}

// collectable are the revisions (highest number first) beyond the newest
// keep that are not in use.
func collectable(revs []v1alpha1.ServiceOfferingRevision, keep int, inUse map[int32]bool) []*v1alpha1.ServiceOfferingRevision {
	var out []*v1alpha1.ServiceOfferingRevision
	for i := keep; i < len(revs); i++ {
		if !inUse[revs[i].Spec.Revision] {
			out = append(out, &revs[i])
		}
	}
	return out
}

// revisionsInUse are the numbers of the offering's revisions that must be
// kept: the latest, those pinned by its agreements and those its requests
// are fulfilled under.
func (r *OfferingReconciler) revisionsInUse(ctx context.Context, off *v1alpha1.ServiceOffering, latest int32) (map[int32]bool, error) {
	var agreements v1alpha1.ServiceAgreementList
	if err := r.List(ctx, &agreements, client.MatchingFields{indexAgreementOffering: off.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var requests v1alpha1.ConsumptionRequestList
	if err := r.List(ctx, &requests, client.MatchingFields{indexRequestOffering: off.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	inUse := map[int32]bool{latest: true}
	for i := range agreements.Items {
		inUse[agreementRevision(&agreements.Items[i], latest)] = true
	}
	for i := range requests.Items {
		inUse[requests.Items[i].Status.OfferingRevision] = true
	}
	return inUse, nil
}

// effectiveOffering is the offering an agreement's requests are fulfilled
// from: the live offering under revisionPolicy Latest; under Pinned, the
// live offering's name, metadata and status (its readiness and provider
// namespace) with the pinned revision's spec. reason is
// ReasonRevisionNotFound, with a message, when the pinned revision does not
// exist; the returned revision number is 0 while the latest is not known.
func effectiveOffering(ctx context.Context, c client.Reader, agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering,
) (eff *v1alpha1.ServiceOffering, revision int32, reason, msg string, err error) {
	if agr.Spec.RevisionPolicy != v1alpha1.RevisionPolicyPinned {
		if off.Status.ObservedGeneration != off.Generation {
			return off, 0, "", "", nil
		}
		return off, off.Status.LatestRevision, "", "", nil
	}
	eff, err = offeringAt(ctx, c, off, agr.Spec.Revision)
	if err != nil {
		return nil, 0, "", "", err
	}
	if eff == nil {
		return nil, 0, v1alpha1.ReasonRevisionNotFound, fmt.Sprintf("ServiceAgreement %s is pinned to revision %d of ServiceOffering %s, which does not exist "+
			"(latest: %d); set spec.revision to one that kubectl get serviceofferingrevisions lists", agr.Name, agr.Spec.Revision, off.Name, off.Status.LatestRevision), nil
	}
	return eff, agr.Spec.Revision, "", "", nil
}

// offeringAt is the offering with the spec its revision n recorded (and its
// live provider namespace, which is immutable); nil when the offering has
// no revision n.
func offeringAt(ctx context.Context, c client.Reader, off *v1alpha1.ServiceOffering, n int32) (*v1alpha1.ServiceOffering, error) {
	var rev v1alpha1.ServiceOfferingRevision
	err := c.Get(ctx, types.NamespacedName{Name: revisionName(off.Name, n)}, &rev)
	if apierrors.IsNotFound(err) || err == nil && (!hasOwnerRef(&rev, off.UID) || rev.Spec.Revision != n) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	eff := off.DeepCopy()
	eff.Spec = *rev.Spec.OfferingSpec.DeepCopy()
	eff.Spec.ProviderNamespace = off.Spec.ProviderNamespace
	return eff, nil
}

// revisionPin is why an agreement's pinned revision cannot be followed;
// reason "" when it can, or the agreement is not pinned.
type revisionPin struct {
	reason, message string
}

// report makes an Active agreement whose pinned revision does not exist
// Ready=False and Stalled: only the provider can fix the pin. It stays
// Active, so that its requests keep what they hold.
func (p revisionPin) report(agr *v1alpha1.ServiceAgreement, status *v1alpha1.ServiceAgreementStatus, lc lifecycle, now time.Time) {
	if p.reason == "" || lc.Phase != v1alpha1.AgreementActive {
		return
	}
	t := metav1.NewTime(now)
	setCondition(&status.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, p.reason, p.message, agr.Generation, t)
	setStalled(&status.Conditions, true, agr.Generation, t)
}
