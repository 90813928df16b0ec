"""scripts/prepare_celeba.py builds a loadable celeb_a from hand-made files."""
import io
import os
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import prepare_celeba  # noqa: E402

ATTRS = ['5_o_Clock_Shadow', 'Arched_Eyebrows', 'Attractive', 'Bags_Under_Eyes',
         'Bald', 'Bangs', 'Big_Lips', 'Big_Nose', 'Black_Hair', 'Blond_Hair', 'Blurry',
         'Brown_Hair', 'Bushy_Eyebrows', 'Chubby', 'Double_Chin', 'Eyeglasses',
         'Goatee', 'Gray_Hair', 'Heavy_Makeup', 'High_Cheekbones', 'Male',
         'Mouth_Slightly_Open', 'Mustache', 'Narrow_Eyes', 'No_Beard', 'Oval_Face',
         'Pale_Skin', 'Pointy_Nose', 'Receding_Hairline', 'Rosy_Cheeks', 'Sideburns',
         'Smiling', 'Straight_Hair', 'Wavy_Hair', 'Wearing_Earrings', 'Wearing_Hat',
         'Wearing_Lipstick', 'Wearing_Necklace', 'Wearing_Necktie', 'Young']


def write_fake_celeba(directory, names):
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(os.path.join(directory, 'img_align_celeba.zip'), 'w') as z:
        for name in names:
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (218, 178, 3), np.uint8)).save(
                buf, format='JPEG')
            z.writestr(f'img_align_celeba/{name}', buf.getvalue())
    with open(os.path.join(directory, 'list_eval_partition.txt'), 'w') as f:
        f.writelines(f'{n} {i % 3}\n' for i, n in enumerate(names))
    with open(os.path.join(directory, 'list_attr_celeba.txt'), 'w') as f:
        f.write(f'{len(names)}\n' + ' '.join(ATTRS) + '\n')
        for i, n in enumerate(names):
            f.write(n + ' ' + ' '.join('1' if (i + j) % 2 else '-1'
                                       for j in range(40)) + '\n')
    with open(os.path.join(directory, 'list_landmarks_align_celeba.txt'), 'w') as f:
        f.write(f'{len(names)}\nlefteye_x lefteye_y righteye_x righteye_y nose_x '
                'nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n')
        f.writelines(n + ' 1 2 3 4 5 6 7 8 9 10\n' for n in names)
    with open(os.path.join(directory, 'identity_CelebA.txt'), 'w') as f:
        f.writelines(f'{n} {i}\n' for i, n in enumerate(names))


def test_prepare_celeba_from_manual_files(tmp_path):
    import tensorflow_datasets as tfds
    manual = tmp_path / 'manual'
    manual.mkdir()
    names = [f'{i:06d}.jpg' for i in range(1, 7)]
    write_fake_celeba(str(manual), names)
    prepare_celeba.build(str(manual), str(tmp_path / 'tfds'))
    train = list(tfds.as_numpy(tfds.load('celeb_a', split='train', download=False,
                                         data_dir=str(tmp_path / 'tfds'))))
    assert len(train) == 2 and train[0]['image'].shape == (218, 178, 3)
    assert bool(train[0]['attributes']['Arched_Eyebrows'])  # (0 + 1) odd -> 1


def test_prepare_celeba_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='img_align_celeba.zip'):
        prepare_celeba.build(str(tmp_path), str(tmp_path / 'tfds'))
