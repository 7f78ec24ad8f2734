// Package gitops holds the tests of offering-operator's GitOps integration:
// the Argo CD health checks in config/gitops/argocd/ (run as Argo CD runs
// them, with gopher-lua in Argo CD's sandbox) and the kstatus reading that
// Flux and other kstatus users derive from the operator's status. The tests
// build objects whose status is shaped exactly as the controllers write it.
// They need no API server.
package gitops
