#!/usr/bin/python3
"""PyTorch CPU baseline for Exercise 8.03's training step, run by BenchmarkFinetune
(cmd/workbook/finetune_bench_test.go), which parses the JSON line it prints last.

The task, as the book runs it: VGG16 without its 1000-way layer (torchvision's vgg16: features,
avgpool, classifier[:-1] — the Keras model's layers up to fc2; torchvision's classifier has
Dropout layers, which are off because the frozen base runs in eval mode), frozen, plus
Linear(4096, 1) + sigmoid, Adam(lr=0.001, eps=1e-7) and binary cross-entropy; each step draws a
batch of 32 training images from the folder with the book's augmentation (shear 0.2°, zoom 0.8–1.2,
horizontal flip, rescale 1/255; torchvision's RandomAffine zooms both axes by the same factor where
Keras draws one per axis, which costs the same) and nearest-neighbour resizing to 224×224.
Validation steps draw unaugmented test images. Weights are torchvision's random initialisation:
only the cost is measured (and the validation accuracy reached, which random weights keep near
chance).

    /usr/bin/python3 torch_finetune_bench.py --data DIR --steps 3 --val-steps 1 [--batch 32] [--threads 2]
        [--device cpu|cuda] [--workers 0]

--workers > 0 decodes and augments in DataLoader worker processes (what a GPU needs to be fed);
the CPU benchmark keeps 0, the same two cores doing everything.
"""
import argparse
import json
import os
import resource
import time

import torch
import torchvision
from torchvision import datasets, transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder with training_set/ and test_set/")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--val-steps", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--stage2", action="store_true",
                    help="stage 2: block 5 (features[24:]) and the head train with Adam(1e-5), fc1/fc2 stay frozen")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    nearest = transforms.InterpolationMode.NEAREST
    train_tf = transforms.Compose([
        transforms.Resize((224, 224), interpolation=nearest),
        transforms.RandomAffine(degrees=0, shear=0.2, scale=(0.8, 1.2), interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),  # rescale 1/255
    ])
    test_tf = transforms.Compose([transforms.Resize((224, 224), interpolation=nearest), transforms.ToTensor()])
    train = datasets.ImageFolder(os.path.join(a.data, "training_set"), train_tf)
    test = datasets.ImageFolder(os.path.join(a.data, "test_set"), test_tf)
    train_dl = torch.utils.data.DataLoader(train, batch_size=a.batch, shuffle=True, num_workers=a.workers)
    test_dl = torch.utils.data.DataLoader(test, batch_size=a.batch, shuffle=True, num_workers=a.workers)

    vgg = torchvision.models.vgg16(weights=None)
    base = torch.nn.Sequential(vgg.features, vgg.avgpool, torch.nn.Flatten(), *list(vgg.classifier.children())[:-1])
    dev = torch.device(a.device)
    base.to(dev)
    base.eval()
    for p in base.parameters():
        p.requires_grad_(False)
    head = torch.nn.Sequential(torch.nn.Linear(4096, 1), torch.nn.Sigmoid()).to(dev)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3, eps=1e-7)
    bottom = base
    if a.stage2:
        # Blocks 1-4 frozen (forward only), block 5 trainable, fc1/fc2 frozen but on the gradient's
        # path to block 5.
        bottom = vgg.features[:24]
        top = torch.nn.Sequential(vgg.features[24:], vgg.avgpool, torch.nn.Flatten(), *list(vgg.classifier.children())[:-1])
        for p in vgg.features[24:].parameters():
            p.requires_grad_(True)
        opt = torch.optim.Adam(list(vgg.features[24:].parameters()) + list(head.parameters()), lr=1e-5, eps=1e-7)
    bce = torch.nn.BCELoss()

    def batches(dl):
        while True:
            for x, y in dl:
                yield x.to(dev), y.float().to(dev)

    tr, te = batches(train_dl), batches(test_dl)
    step_times, step_cpu, sizes = [], [], []
    for _ in range(a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        x, y = next(tr)
        sizes.append(len(x))
        with torch.no_grad():  # frozen base: forward only, as Keras and GoMLX do with a frozen base
            f = bottom(x)
        if a.stage2:
            f = top(f)
        p = head(f).squeeze(1)
        loss = bce(p, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - t0)
        step_cpu.append(time.process_time() - c0)

    val_times, val_cpu, correct, seen = [], [], 0, 0
    base_times, base_cpu = [], []
    for _ in range(a.val_steps):
        t0, c0 = time.perf_counter(), time.process_time()
        x, y = next(te)
        with torch.no_grad():
            tb, cb = time.perf_counter(), time.process_time()
            f = base(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            base_times.append((time.perf_counter() - tb) / len(x))
            base_cpu.append((time.process_time() - cb) / len(x))
            p = head(f).squeeze(1)
        correct += int(((p > 0.5).float() == y).sum())
        seen += len(y)
        val_times.append(time.perf_counter() - t0)
        val_cpu.append(time.process_time() - c0)

    # Full batches after the first step (a folder's last batch is short; the first step warms up).
    full = [i for i in range(1, len(sizes)) if sizes[i] == a.batch] or list(range(len(sizes)))
    after_first = [step_times[i] for i in full]
    cpu_after_first = [step_cpu[i] for i in full]
    print(json.dumps({
        "torch": torch.__version__, "torchvision": torchvision.__version__, "threads": torch.get_num_threads(),
        "device": str(dev), "batch": a.batch, "steps": a.steps,
        "step_times_s": step_times if len(step_times) <= 20 else step_times[:3],
        "total_s": sum(step_times) + sum(val_times),
        "batch_sizes": sizes if len(sizes) <= 20 else sizes[:3],
        "train_step_s": sorted(after_first)[len(after_first) // 2],
        "val_step_s": sum(val_times) / len(val_times),
        "base_per_image_s": sum(base_times) / len(base_times),
        "val_accuracy": correct / seen,
        # process CPU time (all threads): what a shared machine's other work disturbs least
        "train_step_cpu_s": sorted(cpu_after_first)[len(cpu_after_first) // 2],
        "val_step_cpu_s": sum(val_cpu) / len(val_cpu),
        "base_per_image_cpu_s": sum(base_cpu) / len(base_cpu),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
