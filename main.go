package main

import (
	_ "github.com/offering-operator/offering-operator/api/v1alpha1"
	_ "sigs.k8s.io/controller-runtime"
)

func main() {}
